package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"flag"
	"fmt"
	"io/ioutil"
	"math/rand"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v2"
)

const (
	stunMagicCookie = 0x2112A442
	// Payload sizes relayed, each once: every length a UDP peer of a
	// WebRTC client sees in practice (under a 1500-byte MTU).
	minPayload = 1
	maxPayload = 1400
)

type turnFlags struct {
	commonFlags
	server     string // UDP and TCP listener, host:port
	tlsServer  string // TLS listener, host:port
	transports string // comma-separated: udp, tcp, tls
}

func runTurn(args []string) {
	var f turnFlags
	fs := flag.NewFlagSet("turn", flag.ExitOnError)
	f.register(fs)
	fs.StringVar(&f.server, "server", "", "turnkey's UDP and TCP listener, host:port")
	fs.StringVar(&f.tlsServer, "tls", "", "turnkey's TLS listener, host:port")
	fs.StringVar(&f.transports, "transports", "udp,tcp,tls", "transports to check, comma-separated")
	_ = fs.Parse(args)
	f.check()
	if f.server == "" {
		fatalf("-server is required")
	}
	for _, transport := range splitList(f.transports) {
		checkTransport(&f, transport)
	}
}

// checkTransport runs every pion/turn check over one transport.
func checkTransport(f *turnFlags, transport string) {
	fmt.Printf("=== pion/turn over %s\n", transport)
	s := newSession(f, transport, f.password)

	within(f.timeout, transport+": STUN Binding", func() error {
		mapped, err := s.client.SendBindingRequest()
		if err != nil {
			return err
		}
		// On loopback there is no NAT: the server sees our own address.
		if local := s.conn.LocalAddr().String(); mapped.String() != local {
			return fmt.Errorf("XOR-MAPPED-ADDRESS %s, but the local address is %s", mapped, local)
		}
		okf("%s: STUN Binding: mapped address %s", transport, mapped)
		return nil
	})

	var relay net.PacketConn
	within(f.timeout, transport+": Allocate", func() error {
		var err error
		relay, err = s.client.Allocate()
		if err != nil {
			return err
		}
		okf("%s: Allocate with TURN REST credentials: relayed address %s", transport, relay.LocalAddr())
		return nil
	})

	echo := newEchoPeer()
	exchange(f, transport, relay, echo)
	echo.close()
	if got, want := echo.sources(), relay.LocalAddr().String(); len(got) != 1 || got[0] != want {
		fatalf("%s: the echo peer got packets from %v; expected only from the relayed address %s",
			transport, got, want)
	}
	// pion binds a channel after its first Send indication to a peer
	// (pion/turn internal/client/conn.go); turnkey answers in kind.
	if s.conn.txChannelData() == 0 || s.conn.rxChannelData() == 0 {
		fatalf("%s: no channel used: %s", transport, s.conn)
	}
	okf("%s: channel binding used both ways (%s)", transport, s.conn)

	// Close sends Refresh with LIFETIME 0 (RFC 8656 section 7). pion does
	// not wait for the answer; whether the allocation is gone is checked
	// by the caller on turnkey's metrics.
	within(f.timeout, transport+": Close", func() error {
		return relay.Close()
	})
	s.close()
	okf("%s: Close", transport)

	checkWrongPassword(f, transport)
}

// exchange relays every size from minPayload to maxPayload once through
// relay to the echo peer and back, and checks each came back intact, from
// the peer's address.
//
// At most `window` packets are in flight. Sent back to back, they would
// overflow a UDP socket's receive buffer (the echo peer's, pion's or
// turnkey's) whenever a reader is descheduled for a few milliseconds on a
// loaded host: the kernel drops them (Udp RcvbufErrors in /proc/net/snmp),
// which says nothing about turnkey.
func exchange(f *turnFlags, transport string, relay net.PacketConn, echo *echoPeer) {
	const window = 16
	peer := echo.addr()
	pending := map[string]int{}
	var mu sync.Mutex
	var unexpected []string
	inFlight := make(chan struct{}, window)
	received := make(chan struct{})
	count := maxPayload - minPayload + 1
	deadline := time.Now().Add(f.timeout)

	go func() {
		defer close(received)
		buf := make([]byte, 65536)
		for got := 0; got < count; {
			_ = relay.SetReadDeadline(deadline)
			n, from, err := relay.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			key := string(buf[:n])
			if from.String() != peer.String() {
				unexpected = append(unexpected, fmt.Sprintf("%d bytes from %s", n, from))
			} else if pending[key] > 0 {
				pending[key]--
				got++
				<-inFlight
			} else {
				unexpected = append(unexpected, fmt.Sprintf("%d bytes not sent (corrupted?)", n))
			}
			mu.Unlock()
		}
	}()

	start := time.Now()
	sent := 0
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
send:
	for size := minPayload; size <= maxPayload; size++ {
		select {
		case inFlight <- struct{}{}:
		case <-timer.C:
			break send // lost packets hold the window; reported below
		}
		p := payload(size)
		mu.Lock()
		pending[string(p)]++
		mu.Unlock()
		if _, err := relay.WriteTo(p, peer); err != nil {
			fatalf("%s: relayed send of %d bytes: %v", transport, size, err)
		}
		sent++
	}
	<-received

	mu.Lock()
	defer mu.Unlock()
	var missing []int
	for p, n := range pending {
		for ; n > 0; n-- {
			missing = append(missing, len(p))
		}
	}
	if sent < count || len(missing) > 0 || len(unexpected) > 0 {
		fatalf("%s: after %v, %d of %d packets sent, %d of them not back (sizes %v); unexpected: %v",
			transport, f.timeout, sent, count, len(missing), firstInts(missing, 10),
			firstStrings(unexpected, 10))
	}
	okf("%s: relayed %d packets of %d..%d bytes to %s and back, intact, in %.2fs",
		transport, count, minPayload, maxPayload, peer, time.Since(start).Seconds())
}

// checkWrongPassword allocates with a password that does not match the
// username's HMAC: turnkey must answer 401 (RFC 8489 section 9.2.4).
func checkWrongPassword(f *turnFlags, transport string) {
	s := newSession(f, transport, "x"+f.password)
	defer s.close()
	within(f.timeout, transport+": Allocate with a wrong password", func() error {
		relay, err := s.client.Allocate()
		if err == nil {
			relay.Close()
			return fmt.Errorf("allocated %s", relay.LocalAddr())
		}
		// pion: "Allocate error response (error 401: Unauthenticated)".
		if !strings.Contains(err.Error(), "error 401") {
			return fmt.Errorf("expected a 401 error response, got: %v", err)
		}
		okf("%s: wrong password refused: %v", transport, err)
		return nil
	})
}

// session is one pion/turn client on its own socket or connection.
type session struct {
	conn   *frameCounter
	client *turn.Client
}

func newSession(f *turnFlags, transport, password string) *session {
	var conn net.PacketConn
	server := f.server
	within(f.timeout, transport+": connect", func() error {
		var err error
		conn, err = dial(f, transport)
		return err
	})
	if transport == "tls" {
		server = f.tlsServer
	}
	counter := &frameCounter{PacketConn: conn}
	logs := logging.NewDefaultLoggerFactory()
	logs.DefaultLogLevel = logging.LogLevelWarn
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Username:       f.username,
		Password:       password,
		Conn:           counter,
		LoggerFactory:  logs,
	})
	if err != nil {
		fatalf("%s: turn.NewClient: %v", transport, err)
	}
	if err := client.Listen(); err != nil {
		fatalf("%s: Listen: %v", transport, err)
	}
	return &session{conn: counter, client: client}
}

func (s *session) close() {
	s.client.Close()
	s.conn.Close()
}

// dial returns what pion/turn's client reads and writes: a UDP socket, or
// a TCP or TLS connection framed by turn.NewSTUNConn (RFC 8656 section 12.5).
func dial(f *turnFlags, transport string) (net.PacketConn, error) {
	dialer := &net.Dialer{Timeout: f.timeout}
	switch transport {
	case "udp":
		return net.ListenPacket("udp4", "127.0.0.1:0")
	case "tcp":
		c, err := dialer.Dial("tcp", f.server)
		if err != nil {
			return nil, err
		}
		return turn.NewSTUNConn(c), nil
	case "tls":
		if f.tlsServer == "" {
			return nil, fmt.Errorf("-tls is required for transport tls")
		}
		roots, err := loadRoots(f.caFile)
		if err != nil {
			return nil, err
		}
		// The certificate names localhost (and 127.0.0.1); verify it.
		c, err := tls.DialWithDialer(dialer, "tcp", f.tlsServer,
			&tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			return nil, err
		}
		return turn.NewSTUNConn(c), nil
	}
	return nil, fmt.Errorf("unknown transport %q (udp, tcp or tls)", transport)
}

func loadRoots(caFile string) (*x509.CertPool, error) {
	pem, err := ioutil.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return roots, nil
}

// payload returns size pseudo-random bytes, the same for the same size, so
// that a corrupted or truncated packet does not match any packet sent.
func payload(size int) []byte {
	p := make([]byte, size)
	rand.New(rand.NewSource(int64(size))).Read(p)
	return p
}

// frameCounter counts the TURN frames pion writes and reads, by kind, to
// tell whether a channel was bound: pion does not say.
type frameCounter struct {
	net.PacketConn
	txChannel, txSend, rxChannel, rxData int64
}

// ChannelData starts with a channel number in 0x4000..0x7FFF (RFC 8656
// section 12); a STUN message starts with two zero bits and carries the
// magic cookie at offset 4 (RFC 8489 section 5).
func isChannelData(b []byte) bool { return len(b) >= 4 && b[0] >= 0x40 && b[0] <= 0x7F }

func stunType(b []byte) uint16 {
	if len(b) >= 20 && binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie {
		return binary.BigEndian.Uint16(b[0:2])
	}
	return 0
}

func (c *frameCounter) WriteTo(p []byte, addr net.Addr) (int, error) {
	if isChannelData(p) {
		atomic.AddInt64(&c.txChannel, 1)
	} else if stunType(p) == 0x0016 { // Send indication
		atomic.AddInt64(&c.txSend, 1)
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *frameCounter) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err == nil {
		if isChannelData(p[:n]) {
			atomic.AddInt64(&c.rxChannel, 1)
		} else if stunType(p[:n]) == 0x0017 { // Data indication
			atomic.AddInt64(&c.rxData, 1)
		}
	}
	return n, addr, err
}

func (c *frameCounter) txChannelData() int64 { return atomic.LoadInt64(&c.txChannel) }
func (c *frameCounter) rxChannelData() int64 { return atomic.LoadInt64(&c.rxChannel) }

func (c *frameCounter) String() string {
	return fmt.Sprintf("sent %d ChannelData + %d Send indications, received %d ChannelData + %d Data indications",
		atomic.LoadInt64(&c.txChannel), atomic.LoadInt64(&c.txSend),
		atomic.LoadInt64(&c.rxChannel), atomic.LoadInt64(&c.rxData))
}

// echoPeer is the far side of the relay: a UDP socket on 127.0.0.1 that
// sends every datagram back to where it came from.
type echoPeer struct {
	conn *net.UDPConn
	done chan struct{}
	mu   sync.Mutex
	from map[string]bool // source addresses seen
}

func newEchoPeer() *echoPeer {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fatalf("echo peer: %v", err)
	}
	e := &echoPeer{conn: conn, done: make(chan struct{}), from: map[string]bool{}}
	go func() {
		defer close(e.done)
		buf := make([]byte, 65536)
		for {
			n, addr, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.from[addr.String()] = true
			e.mu.Unlock()
			_, _ = conn.WriteToUDP(buf[:n], addr)
		}
	}()
	return e
}

func (e *echoPeer) addr() net.Addr { return e.conn.LocalAddr() }

func (e *echoPeer) close() {
	e.conn.Close()
	<-e.done
}

func (e *echoPeer) sources() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for a := range e.from {
		out = append(out, a)
	}
	return out
}

func firstInts(v []int, n int) []int {
	if len(v) > n {
		return v[:n]
	}
	return v
}

func firstStrings(v []string, n int) []string {
	if len(v) > n {
		return v[:n]
	}
	return v
}
