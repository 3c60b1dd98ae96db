// libFuzzer target for the STUN codec: Message::Decode with every typed
// decoder and the integrity checks on what decodes, DecodeChannelData, and
// the stream framer. Invariants the codec promises are checked here and
// trap when broken, so the fuzzer reports them like crashes.
//
// Build: -DTURNKEY_FUZZ=ON with clang (tests/fuzz/CMakeLists.txt).
// Run:   ./stun_fuzz -max_total_time=60 tests/fuzz/corpus
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "stun/attributes.h"
#include "stun/channel_data.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"
#include "stun/stream_framer.h"

namespace turnkey::stun {
namespace {

void Check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

// True if `inner` lies within `outer`.
bool Within(base::ByteView inner, base::ByteView outer) {
  if (inner.empty()) {
    return true;
  }
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// Runs every typed decoder on `value`, whatever the attribute's real type, so
// each decoder sees arbitrary bytes.
void DecodeAllTyped(base::ByteView value, const TransactionId& txid) {
  (void)DecodeAddress(value);
  (void)DecodeXorAddress(value, txid);
  (void)DecodeUsername(value);
  (void)DecodeRealm(value);
  (void)DecodeNonce(value);
  (void)DecodeSoftware(value);
  (void)DecodeAlternateDomain(value);
  (void)DecodeUserhash(value);
  (void)DecodeMessageIntegrity(value);
  (void)DecodeMessageIntegritySha256(value);
  (void)DecodeFingerprint(value);
  if (auto alg = DecodePasswordAlgorithm(value)) {
    Check(Within(alg->params, value));
  }
  if (auto list = DecodePasswordAlgorithms(value)) {
    Check(list->count >= 1 && list->count <= kMaxPasswordAlgorithms);
    for (const PasswordAlgorithm& a : list->algorithms()) {
      Check(Within(a.params, value));
    }
  }
  if (auto ec = DecodeErrorCode(value)) {
    Check(ec->code >= 300 && ec->code <= 699);
    Check(Within(base::AsBytes(ec->reason), value));
  }
  if (auto list = DecodeUnknownAttributes(value)) {
    for (size_t i = 0; i < list->size(); ++i) {
      (void)(*list)[i];
    }
  }
  (void)DecodeLifetime(value);
  (void)DecodeRequestedTransport(value);
  (void)DecodeRequestedAddressFamily(value);
  (void)DecodeAdditionalAddressFamily(value);
  if (auto aec = DecodeAddressErrorCode(value)) {
    Check(aec->code >= 300 && aec->code <= 699);
  }
  (void)DecodeData(value);
  (void)DecodeChannelNumber(value);
  (void)DecodeEvenPort(value);
  (void)DecodeReservationToken(value);
  (void)DecodeDontFragment(value);
  (void)DecodeIcmp(value);
}

void FuzzMessage(base::ByteView in) {
  auto msg = Message::Decode(in);
  if (!msg) {
    Check(DecodeErrorText(msg.error()) != nullptr);
    return;
  }
  Check(msg->size() >= kHeaderSize && msg->size() <= in.size());
  Check(msg->size() % 4 == 0);
  Check(msg->attribute_count() <= Message::kMaxAttributes);
  Check(msg->unknown_required().size() <= msg->attribute_count());
  for (Attribute a : *msg) {
    Check(Within(a.value, msg->bytes()));
    Check(a.offset >= kHeaderSize && a.offset + kAttributeHeaderSize <= msg->size());
    DecodeAllTyped(a.value, msg->transaction_id());
  }
  const uint8_t key[] = {'k', 'e', 'y'};
  (void)VerifyMessageIntegrity(*msg, key);
  (void)VerifyMessageIntegritySha256(*msg, key);
  (void)VerifyFingerprint(*msg);

  // Re-encode the attributes the receiver would act on, seal the copy, and
  // check that it decodes and verifies.
  base::Bytes out;
  MessageBuilder b(out, msg->method(), msg->message_class(), msg->transaction_id());
  size_t copied = 0;
  for (Attribute a : *msg) {
    if (a.ignored || a.Is(AttributeType::kMessageIntegrity) ||
        a.Is(AttributeType::kMessageIntegritySha256) || a.Is(AttributeType::kFingerprint)) {
      continue;
    }
    b.AddAttribute(a.type, a.value);
    ++copied;
  }
  b.AddMessageIntegrity(key);
  b.AddMessageIntegritySha256(key, 16);
  b.AddFingerprint();
  if (!b.ok()) {
    Check(b.error() == BuildError::kTooLong);
    return;
  }
  auto again = Message::Decode(b.message());
  if (copied + 3 > Message::kMaxAttributes) {
    // The copy can exceed the decoder's fixed capacity by the 3 we added.
    Check(!again.has_value() && again.error() == DecodeError::kTooManyAttributes);
    return;
  }
  Check(again.has_value());
  Check(again->attribute_count() == copied + 3);
  Check(again->type() == msg->type());
  Check(VerifyMessageIntegrity(*again, key) == IntegrityResult::kValid);
  // The copy's SHA-256 integrity is truncated to 16 bytes: valid for a usage
  // that allows it, malformed for TURN's (the default, 32).
  Check(VerifyMessageIntegritySha256(*again, key, 16) == IntegrityResult::kValid);
  Check(VerifyMessageIntegritySha256(*again, key) == IntegrityResult::kMalformed);
  Check(VerifyFingerprint(*again) == IntegrityResult::kValid);
}

void FuzzChannelData(base::ByteView in) {
  for (auto padding : {ChannelDataPadding::kOptional, ChannelDataPadding::kRequired}) {
    auto cd = DecodeChannelData(in, padding);
    if (!cd) {
      continue;
    }
    Check(IsValidChannelNumber(cd->channel));
    Check(Within(cd->data, in));
    Check(cd->size <= in.size() && cd->size >= kChannelDataHeaderSize + cd->data.size());
    base::Bytes out;
    AppendChannelData(out, cd->channel, cd->data, padding);
    auto again = DecodeChannelData(out, padding);
    Check(again.has_value() && again->data.size() == cd->data.size());
  }
}

void FuzzStream(base::ByteView in) {
  const StreamFramer framer(2048);
  base::ByteView rest = in;
  while (true) {
    FrameResult r = framer.Next(rest);
    if (r.status == FrameResult::Status::kError) {
      Check(r.error != FramingError::kNone);
      return;
    }
    if (r.status == FrameResult::Status::kNeedMore) {
      Check(r.size > rest.size());
      return;
    }
    Check(r.size > 0 && r.size <= rest.size() && r.size <= framer.max_frame_size());
    const base::ByteView frame = rest.first(r.size);
    if (r.type == FrameType::kStun) {
      auto msg = Message::Decode(frame);
      Check(!msg || msg->size() == frame.size());
    } else {
      auto cd = DecodeChannelData(frame, ChannelDataPadding::kRequired);
      Check(!cd || cd->size == frame.size());
    }
    rest = rest.subspan(r.size);
  }
}

}  // namespace
}  // namespace turnkey::stun

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const turnkey::base::ByteView in(data, size);
  turnkey::stun::FuzzMessage(in);
  turnkey::stun::FuzzChannelData(in);
  turnkey::stun::FuzzStream(in);
  if (size >= 12) {
    // Typed decoders on raw input too, with the first 12 bytes as the id.
    turnkey::stun::TransactionId txid;
    for (size_t i = 0; i < txid.size(); ++i) {
      txid[i] = data[i];
    }
    turnkey::stun::DecodeAllTyped(in.subspan(12), txid);
  }
  return 0;
}
