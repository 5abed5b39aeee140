// Package api is the JSON wire format of the /dss/v1 SCD API (ASTM F3548-21,
// field names as in utm.yaml) and the conversions between it and the SCD
// operations of pkg/scd.
//
// It owns:
//   - the request and response types, written by hand with utm.yaml's names;
//   - decoding request bodies (spec §1: unknown fields ignored, malformed
//     JSON, wrong JSON types and missing bodies are bad requests);
//   - every stateless check of step A of each endpoint (spec §6), in the
//     order the spec lists them, so that the first failing check decides;
//   - turning volumes into cells through pkg/geo and building the extents
//     union (spec §3.4);
//   - rendering operation results, including OVN scrubbing for callers that
//     do not manage an entity (spec §3.6) and the placeholder subscription ID.
//
// It must never touch the store, read the clock, generate IDs or decide HTTP
// statuses: the request time and the caller arrive in RequestInfo, generated
// IDs are filled in by the handler, and errors are coded models.Error values
// that the handler maps to statuses in one place. Every input it rejects
// yields a CodeBadRequest (or CodeAreaTooLarge) error; it never panics on
// client bytes.
package api
