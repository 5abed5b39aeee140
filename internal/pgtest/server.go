package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is returned (and reported by the test helpers) when no
// PostgreSQL server binaries can be found.
var ErrNotInstalled = errors.New("PostgreSQL not installed: apt-get install postgresql")

// Bounds of the server's life cycle. Start-up includes initdb, which is the
// slow part on a loaded 2-core machine; shutdown uses PostgreSQL's fast mode
// (abort transactions, checkpoint), which takes well under a second here.
const (
	readyTimeout    = 60 * time.Second
	stopTimeout     = 30 * time.Second
	killWaitTimeout = 5 * time.Second
	// startAttempts covers the window between choosing a free port and the
	// server binding it, in which another process may take it.
	startAttempts = 3
)

// Server is one running throwaway PostgreSQL. Its superuser is "postgres"
// with trust authentication on loopback; it is reachable over TCP on
// 127.0.0.1 and over a Unix socket in SocketDir.
type Server struct {
	dir  string // temporary root: data/, sock/, postgres.log
	port int

	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd.Wait returned
	waitErr error         // set before exited is closed

	stopOnce sync.Once
	stopErr  error
}

// Start starts a dedicated server for tb and stops it when tb ends. Tests
// that do not stop or break the server should use Shared or NewDatabase.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// shared is the server of the test binary, started on first use.
var shared struct {
	mu  sync.Mutex
	srv *Server
	err error // a failed start is remembered so every test fails fast
}

// Shared returns the test binary's shared server, starting it on first use.
// Call Main from TestMain so that it is stopped when the tests end.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start()
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.srv
}

// StopShared stops the shared server if one was started.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		return nil
	}
	err := shared.srv.Stop()
	shared.srv = nil
	return err
}

// Main runs the tests and then stops the shared server. Use it as
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// NewDatabase creates an empty database on the shared server and returns its
// URL; the database is dropped when tb ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return Shared(tb).NewDatabase(tb)
}

// URL returns the URL of the database "scd", created at start-up.
func (s *Server) URL() string { return s.DatabaseURL("scd") }

// DatabaseURL returns the URL of database name on this server.
func (s *Server) DatabaseURL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}

// Port returns the TCP port the server listens on (127.0.0.1).
func (s *Server) Port() int { return s.port }

// SocketDir returns the directory holding the server's Unix socket.
func (s *Server) SocketDir() string { return filepath.Join(s.dir, "sock") }

// NewDatabase creates an empty database with a random name and returns its
// URL; the database is dropped (closing its remaining connections) when tb
// ends.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: creating database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE: a test that failed half-way may still hold connections.
		if err := s.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return s.DatabaseURL(name)
}

// admin runs one statement in the maintenance database. CREATE and DROP
// DATABASE cannot run inside a transaction, so it uses a plain connection.
func (s *Server) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DatabaseURL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop shuts the server down (fast mode: open transactions are rolled back)
// and deletes its directory. It is idempotent and bounded: a server that
// does not exit within stopTimeout is killed with its process group.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	var errs []error
	if s.cmd != nil {
		// SIGINT is the postmaster's "fast shutdown".
		if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("signalling postgres: %w", err))
		}
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			// The negative PID addresses the process group of the
			// postmaster (Setpgid at start), i.e. it and its backends.
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-s.exited:
			case <-time.After(killWaitTimeout):
			}
			errs = append(errs, fmt.Errorf("postgres did not stop within %v and was killed", stopTimeout))
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// start initialises a data directory and starts a server in it.
func start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir, cred); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	// --no-sync only skips syncing initdb's own files; the server itself
	// runs with fsync on.
	initdb := command(cred, dir, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	for attempt := 1; ; attempt++ {
		s, err := launch(bin, dir, cred)
		if err == nil {
			return s, nil
		}
		if attempt == startAttempts || !errors.Is(err, errPortTaken) {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

var errPortTaken = errors.New("port taken")

// launch starts the postmaster on a free port and waits until it accepts
// connections and has a database "scd".
func launch(bin, dir string, cred *syscall.Credential) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := command(cred, dir, filepath.Join(bin, "postgres"),
		"-D", filepath.Join(dir, "data"),
		"-p", strconv.Itoa(port),
		"-k", filepath.Join(dir, "sock"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		// Room for several pools of a parallel test run.
		"-c", "max_connections=300",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgtest: starting postgres: %w", err)
	}
	s := &Server{dir: dir, port: port, cmd: cmd, exited: make(chan struct{})}
	// This goroutine only reaps the process; it ends when the process does,
	// which Stop guarantees within its bound.
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			if strings.Contains(string(log), "could not bind") || strings.Contains(string(log), "already in use") {
				return nil, fmt.Errorf("pgtest: %w: %d", errPortTaken, port)
			}
			return nil, fmt.Errorf("pgtest: postgres exited during start-up (%v):\n%s", s.waitErr, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := s.admin(ctx, "CREATE DATABASE scd")
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			return nil, fmt.Errorf("pgtest: postgres not ready after %v: %v", readyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command builds a command that runs as the PostgreSQL user when cred is set
// (initdb and postgres refuse to run as root). Setpgid lets Stop kill the
// postmaster with its backends; Pdeathsig asks the kernel to shut the server
// down if the test binary dies without running Stop (e.g. a panic).
func command(cred *syscall.Credential, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT, Credential: cred}
	return cmd
}

// credential returns the identity of the "postgres" user when running as
// root, and nil (run as ourselves) otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the user \"postgres\" to run the server as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepareDir creates the socket directory and, when the server runs as
// another user, hands the directory tree to that user.
func prepareDir(dir string, cred *syscall.Credential) error {
	if err := os.Mkdir(filepath.Join(dir, "sock"), 0o700); err != nil {
		return err
	}
	if cred == nil {
		return nil
	}
	for _, p := range []string{dir, filepath.Join(dir, "sock")} {
		if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	return nil
}

// debianBinGlob is where Debian and Ubuntu install the server binaries; a
// variable so that a test can pretend they are missing.
var debianBinGlob = "/usr/lib/postgresql/*/bin"

// binDir finds the directory of initdb and postgres: pg_config's answer
// first, then the newest /usr/lib/postgresql/<version>/bin (Debian keeps the
// server binaries off PATH).
func binDir() (string, error) {
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	versions, _ := filepath.Glob(debianBinGlob)
	sort.Slice(versions, func(i, j int) bool { return pgVersion(versions[i]) > pgVersion(versions[j]) })
	candidates = append(candidates, versions...)
	if p, err := exec.LookPath("postgres"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	for _, d := range candidates {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// freePort asks the kernel for a free loopback port. The port is released
// before postgres binds it; launch retries if someone takes it meanwhile.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
