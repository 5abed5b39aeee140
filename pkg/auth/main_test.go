package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"go.uber.org/goleak"
)

// Test keys are generated once: 2048-bit generation is the slowest step of
// the package's tests.
var keyA, keyB, keyC *rsa.PrivateKey

func TestMain(m *testing.M) {
	for _, k := range []**rsa.PrivateKey{&keyA, &keyB, &keyC} {
		var err error
		if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	goleak.VerifyTestMain(m)
}
