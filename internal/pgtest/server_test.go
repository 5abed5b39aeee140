package pgtest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatalf("connecting to the scd database: %v", err)
	}
	var fsync, db string
	if err := conn.QueryRow(ctx, "SELECT current_setting('fsync'), current_database()").Scan(&fsync, &db); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if fsync != "on" || db != "scd" {
		t.Fatalf("fsync=%q database=%q, want on and scd", fsync, db)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s still exists after Stop (%v)", s.dir, err)
	}
	if _, err := pgx.Connect(ctx, s.URL()); err == nil {
		t.Fatal("server still accepts connections after Stop")
	}
}

func TestNewDatabaseIsolated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	urls := []string{NewDatabase(t), NewDatabase(t)}
	if urls[0] == urls[1] {
		t.Fatalf("two databases share the URL %s", urls[0])
	}
	a, err := pgx.Connect(ctx, urls[0])
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	b, err := pgx.Connect(ctx, urls[1])
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a table created in one test database is visible in another")
	}
}

func TestMissingBinariesFail(t *testing.T) {
	// Not parallel: it changes PATH and the package's search location.
	t.Setenv("PATH", t.TempDir())
	old := debianBinGlob
	debianBinGlob = "/nonexistent/postgresql/*/bin"
	defer func() { debianBinGlob = old }()
	_, err := start()
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("start without binaries: %v, want ErrNotInstalled", err)
	}
	if err.Error() != "PostgreSQL not installed: apt-get install postgresql" {
		t.Fatalf("message %q does not say how to install PostgreSQL", err)
	}
}
