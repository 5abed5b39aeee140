package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/raftdss/dss/pkg/auth"
)

// scopeShorthands are the abbreviations of the spec §1 table.
var scopeShorthands = map[string]string{
	"sc":   auth.ScopeStrategicCoordination,
	"cm":   auth.ScopeConstraintManagement,
	"cp":   auth.ScopeConstraintProcessing,
	"cmsa": auth.ScopeConformanceMonitoringSA,
	"aa":   auth.ScopeAvailabilityArbitration,
}

// parseScopes splits a space- or comma-separated scope list, expanding
// shorthands. Full names (anything with a dot) pass verbatim so tokens for
// other scopes can be minted; a bare unknown word is rejected because it is
// almost certainly a typo that would yield a useless token.
func parseScopes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		scope, ok := scopeShorthands[strings.ToLower(f)]
		if !ok {
			if !strings.Contains(f, ".") {
				return nil, fmt.Errorf("unknown scope %q (use sc, cm, cp, cmsa, aa or a full name such as %s)",
					f, auth.ScopeStrategicCoordination)
			}
			scope = f
		}
		if !slices.Contains(out, scope) {
			out = append(out, scope)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scope given")
	}
	return out, nil
}

// runToken implements `dssctl token`: it prints a token signed with --key.
// For local testing only (auth.MintToken).
func runToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", "", "PEM file with the RSA private key (PKCS#8 or PKCS#1), e.g. the dev-key.pem of core-service --dev")
	sub := fs.String("sub", "", "subject: the USS identity that will manage the entities it writes")
	scope := fs.String("scope", "", "scopes, space- or comma-separated; shorthands sc, cm, cp, cmsa, aa")
	aud := fs.String("aud", auth.DefaultDevAudience, "audience: the DSS host name (one of its --accepted_jwt_audiences)")
	ttl := fs.Duration("ttl", auth.DefaultDevTokenTTL, "lifetime; the DSS rejects tokens valid for more than 1h (spec §2)")
	iss := fs.String("iss", auth.DefaultDevIssuer, "issuer")
	kid := fs.String("kid", "", "key ID for the token header (optional)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: dssctl token --key FILE --sub USS --scope "SCOPE [SCOPE...]" [--aud localhost] [--ttl 59m] [--iss raftdss-dev]`)
		fmt.Fprintln(fs.Output(), "\nPrints an RS256 access token for local testing.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dssctl token: "+format+"\n\n", a...)
		fs.Usage()
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *keyPath == "":
		return usageErr("--key is required")
	case *sub == "":
		return usageErr("--sub is required")
	case *aud == "":
		return usageErr("--aud must not be empty")
	case *iss == "":
		return usageErr("--iss must not be empty")
	case *ttl <= 0 || *ttl > auth.MaxTokenLifetime:
		return usageErr("--ttl must be positive and at most %s", auth.MaxTokenLifetime)
	}
	scopes, err := parseScopes(*scope)
	if err != nil {
		return usageErr("--scope: %v", err)
	}

	key, err := auth.LoadPrivateKey(*keyPath)
	if err != nil {
		fmt.Fprintf(stderr, "dssctl token: %v\n", err)
		return 1
	}
	tok, err := auth.MintToken(key, auth.TokenOptions{
		Subject: *sub, Issuer: *iss, Audience: *aud, Scopes: scopes, TTL: *ttl, KeyID: *kid,
	})
	if err != nil {
		fmt.Fprintf(stderr, "dssctl token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
