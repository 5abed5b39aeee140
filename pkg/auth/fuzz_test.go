package auth

import (
	"errors"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/raftdss/dss/pkg/models"
)

// FuzzAuthenticate feeds arbitrary Authorization header values: the
// authenticator reads untrusted bytes on every request, so it must never
// panic and must fail only with CodeUnauthenticated.
func FuzzAuthenticate(f *testing.F) {
	good := sign(f, jwt.SigningMethodRS256, keyA, goodClaims(), "")
	f.Add("Bearer " + good)
	f.Add("bearer " + good + "x")
	f.Add("Bearer " + sign(f, jwt.SigningMethodRS256, keyB, goodClaims(), "k"))
	f.Add("Bearer " + sign(f, jwt.SigningMethodRS256, keyA, edit(goodClaims(), "aud", []any{1, nil}), ""))
	f.Add("Bearer eyJhbGciOiJub25lIn0.e30.")
	f.Add("Bearer a.b.c")
	f.Add("Bearer ")
	f.Add("")
	a := newTestAuth(f, nil)
	f.Fuzz(func(t *testing.T, header string) {
		c, err := a.authenticateHeader(header)
		if err == nil {
			if c == nil || c.Subject == "" {
				t.Fatalf("accepted %q with claims %+v", header, c)
			}
			return
		}
		var me *models.Error
		if !errors.As(err, &me) || me.Code != models.CodeUnauthenticated {
			t.Fatalf("header %q: err = %v, want CodeUnauthenticated", header, err)
		}
	})
}
