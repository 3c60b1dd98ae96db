// Internal to config/: checks of single values that need no YAML, shared by
// the decoder and testable alone.
//
// The Check* functions return Ok() or InvalidArgument whose message says what
// is wrong with the value (quoting it: none of these values is secret); the
// loader puts "FILE:LINE: key: " in front.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "base/crypto.h"
#include "base/status.h"

namespace turnkey::config {

// `text` in double quotes, escaped and cut to ~60 bytes so a stray binary
// blob cannot flood a log. Never call it on a secret.
std::string QuoteForMessage(std::string_view text);

// `text` with each control character (C0, DEL) as \xNN, so that it cannot
// act on a terminal; with `quotes`, '"' and '\' get a backslash too.
std::string Escaped(std::string_view text, bool quotes = false);

bool HasControlCharacter(std::string_view text);

// Levenshtein distance, for "did you mean" on unknown keys.
size_t EditDistance(std::string_view a, std::string_view b);

// TURN realm: RFC 8489 section 14.9 (fewer than 128 characters), and no
// quotes or backslashes, which would need escaping wherever it is quoted.
base::Status CheckRealm(std::string_view text);

// cluster.name: 1-64 of [A-Za-z0-9_.-] (a Redis key and channel prefix).
base::Status CheckClusterName(std::string_view text);

// SOFTWARE attribute text: fewer than 128 characters (RFC 8489 section
// 14.14), printable.
base::Status CheckSoftware(std::string_view text);

// ALTERNATE-DOMAIN text (RFC 8489 section 14.16): a DNS name, dot-separated
// labels of letters, digits and hyphens, at most 253 characters.
base::Status CheckDomainName(std::string_view text);

// A browser Origin as browsers serialize it: lower-case
// http(s)://host[:port], nothing after (RFC 6454 section 6.1).
base::Status CheckOrigin(std::string_view text);

// A stun:, stuns:, turn: or turns: URI as base::ParseIceUrl takes it (RFC
// 7064, RFC 7065; only turn URIs take "?transport=udp|tcp").
base::Status CheckIceUrl(std::string_view text);

// An absolute URL path for an HTTP route, e.g. "/metrics".
base::Status CheckUrlPath(std::string_view text);

// Exactly 32 hex digits (either case) -> 16 bytes; nullopt otherwise.
std::optional<base::Md5Digest> ParseHexMd5(std::string_view text);
// Exactly 64 hex digits (either case) -> 32 bytes; nullopt otherwise.
std::optional<base::Sha256Digest> ParseHexSha256(std::string_view text);

}  // namespace turnkey::config
