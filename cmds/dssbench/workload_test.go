package main

import (
	"encoding/json"
	"testing"

	"github.com/raftdss/dss/pkg/api"
)

func TestResponseOVN(t *testing.T) {
	rendered, err := json.Marshal(api.ChangeOperationalIntentReferenceResponse{
		OperationalIntentReference: api.OperationalIntentReference{ID: "id1", OVN: "abc_DEF-123="},
		Subscribers:                []api.SubscriberToNotify{{UssBaseURL: "https://uss1.example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"rendered", string(rendered), "abc_DEF-123="},
		{"spaced (decoded)", `{"operational_intent_reference": {"id": "x", "ovn" : "o1"}}`, "o1"},
		{"escaped (decoded)", `{"operational_intent_reference":{"ovn":"a\u0062c"}}`, "abc"},
		{"no OVN", `{"subscribers":[]}`, ""},
		{"not JSON", `<html>`, ""},
	} {
		if got := responseOVN([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: responseOVN(%s) = %q, want %q", tc.name, tc.body, got, tc.want)
		}
	}
}
