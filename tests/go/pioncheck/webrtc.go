package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/pion/webrtc/v3"
)

type webrtcFlags struct {
	commonFlags
	urls     string // ICE server URLs, comma-separated; each is checked alone
	messages int    // DataChannel messages each way per URL
}

func runWebRTC(args []string) {
	var f webrtcFlags
	fs := flag.NewFlagSet("webrtc", flag.ExitOnError)
	f.register(fs)
	fs.StringVar(&f.urls, "urls", "", "ICE server URLs (turn:, turns:), comma-separated; each is checked alone")
	fs.IntVar(&f.messages, "messages", 100, "DataChannel messages per URL")
	_ = fs.Parse(args)
	f.check()
	if f.urls == "" {
		fatalf("-urls is required")
	}
	// pion/ice dials turns: with a tls.Config that names no roots, so Go
	// verifies against the system pool, which reads SSL_CERT_FILE the first
	// time it is used: point it at the test's CA before any TLS happens.
	if err := os.Setenv("SSL_CERT_FILE", f.caFile); err != nil {
		fatalf("setenv: %v", err)
	}
	for _, url := range splitList(f.urls) {
		checkRelayCall(&f, url)
	}
}

// checkRelayCall connects two PeerConnections in this process with ICE
// restricted to relay candidates from url, so every packet between them
// goes through turnkey, and echoes DataChannel messages across.
func checkRelayCall(f *webrtcFlags, url string) {
	fmt.Printf("=== pion/webrtc relay-only through %s\n", url)
	start := time.Now()
	offerer := newPeerConnection(f, url)
	answerer := newPeerConnection(f, url)
	defer closePeerConnections(f, offerer, answerer)

	// The answerer sends every message back as it came.
	answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if err := dc.Send(m.Data); err != nil {
				fmt.Printf("      answerer: echo failed: %v\n", err)
			}
		})
	})
	dc, err := offerer.CreateDataChannel("pioncheck", nil)
	if err != nil {
		fatalf("%s: CreateDataChannel: %v", url, err)
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	echoes := make(chan []byte, f.messages)
	dc.OnMessage(func(m webrtc.DataChannelMessage) { echoes <- m.Data })

	within(f.timeout, url+": offer/answer with gathered candidates", func() error {
		return negotiate(offerer, answerer)
	})
	select {
	case <-opened:
	case <-time.After(f.timeout):
		fatalf("%s: DataChannel not open after %v (ICE: offerer %s, answerer %s)", url, f.timeout,
			offerer.ICEConnectionState(), answerer.ICEConnectionState())
	}
	pair, err := offerer.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		fatalf("%s: no selected candidate pair: %v", url, err)
	}
	if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
		fatalf("%s: selected pair %s <-> %s is not relay to relay", url, pair.Local, pair.Remote)
	}
	okf("%s: connected relay to relay (%s:%d <-> %s:%d) in %.2fs", url,
		pair.Local.Address, pair.Local.Port, pair.Remote.Address, pair.Remote.Port,
		time.Since(start).Seconds())

	exchangeMessages(f, url, dc, echoes)
}

func newPeerConnection(f *webrtcFlags, url string) *webrtc.PeerConnection {
	var settings webrtc.SettingEngine
	// IPv4 only: pion/turn's client resolves TURN servers as IPv4 anyway,
	// and the test server listens on 127.0.0.1.
	settings.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	api := webrtc.NewAPI(webrtc.WithSettingEngine(settings))
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		ICEServers: []webrtc.ICEServer{{
			URLs:       []string{url},
			Username:   f.username,
			Credential: f.password,
		}},
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	if err != nil {
		fatalf("%s: NewPeerConnection: %v", url, err)
	}
	return pc
}

// negotiate exchanges offer and answer, each with all its candidates
// (non-trickle ICE: both sides are in this process).
func negotiate(offerer, answerer *webrtc.PeerConnection) error {
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	if err := checkRelayCandidates("offer", offerer.LocalDescription()); err != nil {
		return err
	}
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		return err
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		return err
	}
	<-gathered
	if err := checkRelayCandidates("answer", answerer.LocalDescription()); err != nil {
		return err
	}
	return offerer.SetRemoteDescription(*answerer.LocalDescription())
}

// checkRelayCandidates fails when gathering produced no relay candidate:
// the Allocate failed, and ICE would only time out later.
func checkRelayCandidates(what string, desc *webrtc.SessionDescription) error {
	if !bytes.Contains([]byte(desc.SDP), []byte(" typ relay")) {
		return fmt.Errorf("the %s has no relay candidate (did the Allocate fail?):\n%s", what, desc.SDP)
	}
	return nil
}

// exchangeMessages sends f.messages messages of 4..16000 bytes and checks
// each comes back intact, in order (a DataChannel is reliable and ordered
// by default).
func exchangeMessages(f *webrtcFlags, url string, dc *webrtc.DataChannel, echoes <-chan []byte) {
	start := time.Now()
	sent := make([][]byte, 0, f.messages)
	for i := 0; i < f.messages; i++ {
		msg := payload(4 + (i*997)%15997)
		binary.BigEndian.PutUint32(msg, uint32(i))
		if err := dc.Send(msg); err != nil {
			fatalf("%s: DataChannel send %d: %v", url, i, err)
		}
		sent = append(sent, msg)
	}
	deadline := time.After(f.timeout)
	for i := range sent {
		select {
		case got := <-echoes:
			if !bytes.Equal(got, sent[i]) {
				fatalf("%s: echo %d: %d bytes, expected message %d of %d bytes",
					url, i, len(got), binary.BigEndian.Uint32(got), len(sent[i]))
			}
		case <-deadline:
			fatalf("%s: %d of %d DataChannel messages echoed after %v", url, i, len(sent), f.timeout)
		}
	}
	okf("%s: %d DataChannel messages of 4..16000 bytes echoed intact in %.2fs",
		url, len(sent), time.Since(start).Seconds())
}

// closePeerConnections closes both sides; pion then deletes their
// allocations (Refresh with LIFETIME 0) and closes TCP/TLS connections.
func closePeerConnections(f *webrtcFlags, pcs ...*webrtc.PeerConnection) {
	var wg sync.WaitGroup
	for _, pc := range pcs {
		wg.Add(1)
		go func(pc *webrtc.PeerConnection) {
			defer wg.Done()
			if err := pc.Close(); err != nil {
				fmt.Printf("      close: %v\n", err)
			}
		}(pc)
	}
	within(f.timeout, "PeerConnection.Close", func() error {
		wg.Wait()
		return nil
	})
}
