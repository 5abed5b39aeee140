package main

import (
	"io"
	"strings"
	"testing"

	"github.com/raftdss/dss/pkg/scd"
)

func TestQuotaFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--dev", "--memstore"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.quotas.quotas(), (scd.Quotas{SubscriptionsPerCell: 10, EntitiesPerCell: 100}); got != want {
		t.Fatalf("default quotas %+v, want %+v", got, want)
	}
	cfg, err = parseFlags([]string{"--dev", "--memstore", "--max_subscriptions_per_uss_per_cell", "0",
		"--max_entities_per_uss_per_cell=4294967295"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.quotas.quotas(), (scd.Quotas{SubscriptionsPerCell: 0, EntitiesPerCell: 1<<32 - 1}); got != want {
		t.Fatalf("quotas %+v, want %+v", got, want)
	}
	for _, bad := range []string{"-1", "4294967296", "ten", ""} {
		_, err := parseFlags([]string{"--dev", "--memstore", "--max_entities_per_uss_per_cell=" + bad}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "max_entities_per_uss_per_cell") {
			t.Errorf("--max_entities_per_uss_per_cell=%q: error %v, want one naming the flag", bad, err)
		}
	}
}
