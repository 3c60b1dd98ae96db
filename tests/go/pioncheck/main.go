// Command pioncheck drives turnkey with Pion, the Go WebRTC stack (Debian 12:
// pion/turn v2.1.0, pion/stun 0.4.0, pion/webrtc v3.1.56): a client nobody
// here wrote, and the one Go applications and many SFUs use.
//
//	pioncheck turn   -server HOST:PORT -tls HOST:PORT -ca FILE -username U -password P
//	pioncheck webrtc -urls URL,URL,... -ca FILE -username U -password P
//
// "turn" checks pion/turn's client over each of -transports (STUN Binding,
// Allocate, relaying to a UDP echo peer over a channel, a wrong password,
// Close). "webrtc" connects two pion/webrtc PeerConnections relay-only
// through each URL and exchanges DataChannel messages.
//
// Every step has a deadline. The program prints one "ok:" line per check
// that passed and exits 0, or prints "FAIL: ..." and exits 1 at the first
// failure. tests/integration/test_pion.py builds and runs it against the
// real binary.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Flags shared by both subcommands.
type commonFlags struct {
	username string        // TURN REST username, "<expiry>:<user>"
	password string        // base64(HMAC-SHA1(secret, username))
	caFile   string        // PEM certificate that signed the server's TLS certificate
	timeout  time.Duration // bound on each step
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.username, "username", "", "TURN username (TURN REST: <expiry>:<user>)")
	fs.StringVar(&c.password, "password", "", "TURN password")
	fs.StringVar(&c.caFile, "ca", "", "PEM file of the CA that signed the server's TLS certificate")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound on each step")
}

func (c *commonFlags) check() {
	if c.username == "" || c.password == "" || c.caFile == "" {
		fatalf("-username, -password and -ca are required")
	}
}

// fatalf reports a failed check and ends the program: the checks depend on
// each other, so the first failure is the one worth reading.
func fatalf(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func okf(format string, args ...interface{}) {
	fmt.Printf("ok:   "+format+"\n", args...)
}

// within runs fn and fails the program if it has not returned after d.
// Pion's calls take no context; a call stuck past its deadline is left
// behind, which is fine because the program then exits.
func within(d time.Duration, what string, fn func() error) {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		fatalf("%s: no result after %v", what, d)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: pioncheck turn|webrtc [flags]  (pioncheck turn -h for the flags)")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "turn":
		runTurn(os.Args[2:])
	case "webrtc":
		runWebRTC(os.Args[2:])
	default:
		usage()
	}
	fmt.Println("RESULT: all ok")
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
