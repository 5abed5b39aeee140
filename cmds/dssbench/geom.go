package main

import (
	"math"
	"time"

	"github.com/golang/geo/s2"

	"github.com/raftdss/dss/pkg/api"
)

// The W1/W3 area: a 100 × 100 km square whose south-west corner is placed
// so that its centre is 34.0N -118.0 (Los Angeles basin), split into 10 × 10
// km subscription tiles. Positions inside it are kilometres east (x) and
// north (y) of that corner, projected with the centre's scale: the error of
// this flat projection is irrelevant because tiles and flights use the same
// one and flights keep tileMarginKM away from tile edges.
const (
	areaCenterLat = 34.0
	areaCenterLng = -118.0
	areaSizeKM    = 100.0
	tileSizeKM    = 10.0
	tilesPerSide  = int(areaSizeKM / tileSizeKM)
	flightSizeKM  = 2.0
	kmPerDegLat   = 111.32
	// tileMarginKM keeps a flight said to lie in one tile clear of the tile
	// edges: S2 polygon edges are geodesics, not parallels, so near an edge
	// the flight's covering could poke out of the tile's by a cell.
	tileMarginKM = 0.1
)

var kmPerDegLng = kmPerDegLat * math.Cos(areaCenterLat*math.Pi/180)

// point converts bench coordinates (km) to latitude and longitude.
func point(xKM, yKM float64) api.LatLngPoint {
	return api.LatLngPoint{
		Lat: areaCenterLat + (yKM-areaSizeKM/2)/kmPerDegLat,
		Lng: areaCenterLng + (xKM-areaSizeKM/2)/kmPerDegLng,
	}
}

// rect is an axis-aligned rectangle in bench coordinates (km).
type rect struct{ x0, y0, x1, y1 float64 }

// polygon is the rectangle as a counter-clockwise polygon volume.
func (r rect) volume(altLo, altHi float64) *api.Volume3D {
	return &api.Volume3D{
		OutlinePolygon: &api.Polygon{Vertices: []api.LatLngPoint{
			point(r.x0, r.y0), point(r.x1, r.y0), point(r.x1, r.y1), point(r.x0, r.y1),
		}},
		AltitudeLower: altitude(altLo),
		AltitudeUpper: altitude(altHi),
	}
}

// tile returns the index of the tile that holds r with the margin, or -1
// when r straddles tiles.
func (r rect) tile() int {
	tx := int(math.Floor(r.x0 / tileSizeKM))
	ty := int(math.Floor(r.y0 / tileSizeKM))
	if tx < 0 || ty < 0 || tx >= tilesPerSide || ty >= tilesPerSide {
		return -1
	}
	in := func(lo, hi float64, t int) bool {
		return lo >= float64(t)*tileSizeKM+tileMarginKM && hi <= float64(t+1)*tileSizeKM-tileMarginKM
	}
	if !in(r.x0, r.x1, tx) || !in(r.y0, r.y1, ty) {
		return -1
	}
	return ty*tilesPerSide + tx
}

// tileRect is the rectangle of tile i.
func tileRect(i int) rect {
	tx, ty := i%tilesPerSide, i/tilesPerSide
	return rect{
		x0: float64(tx) * tileSizeKM, y0: float64(ty) * tileSizeKM,
		x1: float64(tx+1) * tileSizeKM, y1: float64(ty+1) * tileSizeKM,
	}
}

func altitude(v float64) *api.Altitude {
	return &api.Altitude{Value: v, Reference: "W84", Units: "M"}
}

func apiTime(t time.Time) *api.Time {
	return &api.Time{Value: t.UTC().Format(time.RFC3339Nano), Format: "RFC3339"}
}

// busyCellVolume is W2's footprint: a 2 m square at the centre of the S2
// level-13 cell that holds 34N -118, so every W2 flight covers exactly that
// one cell (spec §4: the level the DSS indexes at) and conflicts with every
// other W2 flight whose time overlaps.
func busyCellVolume() *api.Volume3D {
	id := s2.CellIDFromLatLng(s2.LatLngFromDegrees(areaCenterLat, areaCenterLng)).Parent(13)
	c := id.LatLng()
	lat, lng := c.Lat.Degrees(), c.Lng.Degrees()
	const halfM = 1.0
	dLat := halfM / 1000 / kmPerDegLat
	dLng := halfM / 1000 / (kmPerDegLat * math.Cos(lat*math.Pi/180))
	return &api.Volume3D{
		OutlinePolygon: &api.Polygon{Vertices: []api.LatLngPoint{
			{Lat: lat - dLat, Lng: lng - dLng}, {Lat: lat - dLat, Lng: lng + dLng},
			{Lat: lat + dLat, Lng: lng + dLng}, {Lat: lat + dLat, Lng: lng - dLng},
		}},
		AltitudeLower: altitude(0),
		AltitudeUpper: altitude(20),
	}
}
