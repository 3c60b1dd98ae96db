// Read by the go command in GOPATH mode only: its presence lets
// "github.com/pion/webrtc/v3" resolve to Debian's unversioned
// /usr/share/gocode/src/github.com/pion/webrtc ("minimal module
// compatibility"). See tests/integration/test_pion.py.
module turnkeytest/pioncheck

go 1.19
