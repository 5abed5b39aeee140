package models

import (
	"slices"
	"testing"
)

func TestCellSets(t *testing.T) {
	a := NormalizeCells([]CellID{5, 1, 3, 3, -2})
	if !slices.Equal(a, []CellID{-2, 1, 3, 5}) {
		t.Fatalf("NormalizeCells = %v", a)
	}
	b := []CellID{2, 3, 9}
	if !CellsIntersect(a, b) || CellsIntersect(a, []CellID{0, 2, 4}) || CellsIntersect(nil, a) {
		t.Error("CellsIntersect wrong")
	}
	if !CellsContainAll(a, []CellID{-2, 5}) || CellsContainAll(a, []CellID{1, 2}) || !CellsContainAll(a, nil) {
		t.Error("CellsContainAll wrong")
	}
	if u := UnionCells(a, b); !slices.Equal(u, []CellID{-2, 1, 2, 3, 5, 9}) {
		t.Errorf("UnionCells = %v", u)
	}
}

func TestParseID(t *testing.T) {
	good := "3F2A4C1E-8B7D-4E3A-9C1B-2D4E6F8A0B1C"
	id, err := ParseID(good)
	if err != nil || id != "3f2a4c1e-8b7d-4e3a-9c1b-2d4e6f8a0b1c" {
		t.Fatalf("ParseID(%q) = %q, %v", good, id, err)
	}
	for _, bad := range []string{"", "3f2a4c1e8b7d4e3a9c1b2d4e6f8a0b1c", "3f2a4c1e-8b7d-1e3a-9c1b-2d4e6f8a0b1c",
		"3f2a4c1e-8b7d-4e3a-7c1b-2d4e6f8a0b1c", "3f2a4c1e-8b7d-4e3a-9c1b-2d4e6f8a0b1g", "3f2a4c1e_8b7d-4e3a-9c1b-2d4e6f8a0b1c"} {
		if _, err := ParseID(bad); CodeOf(err) != CodeBadRequest {
			t.Errorf("ParseID(%q) error = %v, want BadRequest", bad, err)
		}
	}
}
