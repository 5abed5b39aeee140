//go:build !unix

package main

import (
	"errors"
	"time"
)

// selfCPU is the CPU time dssbench has used so far: not measured here.
func selfCPU() (time.Duration, error) { return 0, errors.New("not supported on this system") }
