package raftstore

import (
	"github.com/raftdss/dss/pkg/pool"
)

// poolCodecs are the pool's operations (docs/spec/aux.md), registered
// beside the SCD codecs (one log, one registry), in the same canonical
// format, fields in the order of pkg/pool's declarations.
var poolCodecs = []opCodec{
	codecOf[pool.PutHeartbeat]("PutHeartbeat",
		func(e *encoder, o *pool.PutHeartbeat) {
			e.str(o.InstanceID)
			e.str(o.PublicEndpoint)
			e.str(o.Reporter)
			e.str(o.Source)
			e.time(o.Timestamp)
			e.time(o.NextExpectedBefore)
		},
		func(d *decoder, o *pool.PutHeartbeat) {
			o.InstanceID = d.str()
			o.PublicEndpoint = d.str()
			o.Reporter = d.str()
			o.Source = d.str()
			o.Timestamp = d.time()
			o.NextExpectedBefore = d.time()
		}),
	codecOf[pool.ListDSSInstances]("ListDSSInstances",
		func(*encoder, *pool.ListDSSInstances) {},
		func(*decoder, *pool.ListDSSInstances) {}),
}
