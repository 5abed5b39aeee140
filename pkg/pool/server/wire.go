package server

import (
	"time"

	"github.com/raftdss/dss/pkg/models"
)

// JSON wire types of the auxiliary API (field names as in aux.yaml).

type versionResponse struct {
	Version string `json:"version"`
}

type poolResponse struct {
	DarID string `json:"dar_id"`
}

type dssInstancesResponse struct {
	DSSInstances []dssInstance `json:"dss_instances"`
}

type dssInstance struct {
	ID                  string     `json:"id"`
	PublicEndpoint      string     `json:"public_endpoint,omitempty"`
	MostRecentHeartbeat *heartbeat `json:"most_recent_heartbeat,omitempty"`
}

type heartbeat struct {
	Timestamp                   string `json:"timestamp"`
	Reporter                    string `json:"reporter,omitempty"`
	Source                      string `json:"source"`
	Index                       int64  `json:"index"`
	NextHeartbeatExpectedBefore string `json:"next_heartbeat_expected_before,omitempty"`
}

type casResponse struct {
	CAs []string `json:"CAs"`
}

type globalOptionsResponse struct {
	SCDGlobalLock              bool `json:"scd_global_lock"`
	SCDHashLock                bool `json:"scd_hash_lock"`
	TimeBasedNotificationIndex bool `json:"time_based_notification_index"`
}

func renderTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func renderInstances(insts []*models.DSSInstance) dssInstancesResponse {
	out := dssInstancesResponse{DSSInstances: make([]dssInstance, len(insts))}
	for i, inst := range insts {
		hb := &inst.Heartbeat
		w := &heartbeat{Timestamp: renderTime(hb.Timestamp), Reporter: hb.Reporter, Source: hb.Source, Index: hb.Index}
		if !hb.NextExpectedBefore.IsZero() {
			w.NextHeartbeatExpectedBefore = renderTime(hb.NextExpectedBefore)
		}
		out.DSSInstances[i] = dssInstance{ID: inst.ID, PublicEndpoint: inst.PublicEndpoint, MostRecentHeartbeat: w}
	}
	return out
}
