#include "relay/turn_counters.h"

namespace turnkey::relay {

const char* MethodLabelName(MethodLabel method) {
  switch (method) {
    case MethodLabel::kBinding:
      return "binding";
    case MethodLabel::kAllocate:
      return "allocate";
    case MethodLabel::kRefresh:
      return "refresh";
    case MethodLabel::kCreatePermission:
      return "create_permission";
    case MethodLabel::kChannelBind:
      return "channel_bind";
    case MethodLabel::kOther:
    case MethodLabel::kCount:
      break;
  }
  return "other";
}

size_t CodeLabelIndex(uint16_t code) {
  for (size_t i = 0; i + 1 < kCodeLabelCount; ++i) {
    if (kCodeLabels[i] == code) {
      return i;
    }
  }
  return kCodeLabelCount - 1;
}

const char* CodeLabelName(size_t index) {
  static const char* const kNames[] = {"200", "300", "400", "401", "403", "420", "437",
                                       "438", "440", "441", "442", "443", "486", "508"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) + 1 == kCodeLabelCount);
  return index + 1 < kCodeLabelCount ? kNames[index] : "other";
}

const char* DirectionName(Direction direction) {
  return direction == Direction::kClientToPeer ? "to_peer" : "to_client";
}

const char* DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kMalformed:
      return "malformed";
    case DropReason::kFingerprint:
      return "fingerprint";
    case DropReason::kUnexpected:
      return "unexpected";
    case DropReason::kNoAllocation:
      return "no_allocation";
    case DropReason::kNoPermission:
      return "no_permission";
    case DropReason::kNoChannel:
      return "no_channel";
    case DropReason::kPeerDenied:
      return "peer_denied";
    case DropReason::kBandwidth:
      return "bandwidth";
    case DropReason::kSendFailed:
      return "send_failed";
    case DropReason::kRateLimited:
      return "rate_limited";
    case DropReason::kClientBacklog:
      return "client_backlog";
    case DropReason::kCount:
      break;
  }
  return "other";
}

}  // namespace turnkey::relay
