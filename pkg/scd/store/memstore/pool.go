package memstore

import (
	"context"
	"slices"
	"strings"

	"github.com/raftdss/dss/pkg/models"
)

// ---- pool (repos.Pool) ----

// A stored DSSInstance is immutable like every other stored entity (see
// Frozen): upserts install a new copy.

func (r *repo) GetDSSInstance(_ context.Context, id string) (*models.DSSInstance, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	if inst := r.s.instances[id]; inst != nil {
		c := *inst
		return &c, nil
	}
	return nil, nil
}

func (r *repo) ListDSSInstances(_ context.Context) ([]*models.DSSInstance, error) {
	if err := r.checkRead(); err != nil {
		return nil, err
	}
	return sortedInstances(r.s.instances, true), nil
}

func (r *repo) UpsertDSSInstance(_ context.Context, inst *models.DSSInstance) error {
	if err := r.checkWrite("UpsertDSSInstance"); err != nil {
		return err
	}
	if inst == nil || inst.ID == "" {
		return models.Errorf(models.CodeInternal, "memstore: upsert of a DSS instance without ID")
	}
	c := *inst
	c.Heartbeat.Timestamp = c.Heartbeat.Timestamp.UTC()
	c.Heartbeat.NextExpectedBefore = c.Heartbeat.NextExpectedBefore.UTC()
	r.s.undo = append(r.s.undo, undoEntry{kind: kindInstance, id: c.ID, inst: r.s.instances[c.ID]})
	r.s.instances[c.ID] = &c
	return nil
}

// LenDSSInstances returns the number of stored DSS instances.
func (s *State) LenDSSInstances() int { return len(s.instances) }

// sortedInstances returns the instances in increasing ID order, copied when
// copies is set (for callers) or shared (for the snapshot encoder).
func sortedInstances(m map[string]*models.DSSInstance, copies bool) []*models.DSSInstance {
	out := make([]*models.DSSInstance, 0, len(m))
	for _, inst := range m {
		if copies {
			c := *inst
			inst = &c
		}
		out = append(out, inst)
	}
	slices.SortFunc(out, func(a, b *models.DSSInstance) int { return strings.Compare(a.ID, b.ID) })
	return out
}
