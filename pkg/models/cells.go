package models

import "slices"

// Cell sets are slices of CellID sorted ascending without duplicates; pkg/geo
// returns them that way and the helpers below rely on it.

// NormalizeCells sorts cells and removes duplicates, in place.
func NormalizeCells(cells []CellID) []CellID {
	slices.Sort(cells)
	return slices.Compact(cells)
}

// CellsIntersect reports whether two sorted cell sets share a cell.
func CellsIntersect(a, b []CellID) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			return true
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return false
}

// CellsContainAll reports whether sorted set super contains every cell of
// sorted set sub.
func CellsContainAll(super, sub []CellID) bool {
	i := 0
	for _, c := range sub {
		for i < len(super) && super[i] < c {
			i++
		}
		if i == len(super) || super[i] != c {
			return false
		}
	}
	return true
}

// UnionCells returns a new sorted set holding the cells of a and b.
func UnionCells(a, b []CellID) []CellID {
	out := make([]CellID, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
