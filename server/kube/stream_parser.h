// Parsers for API server responses that take the body chunk by chunk, as it
// arrives, and never hold more than one element of it.
#ifndef HERALD_SERVER_KUBE_STREAM_PARSER_H_
#define HERALD_SERVER_KUBE_STREAM_PARSER_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace herald::kube {

// Splits a watch stream into its newline-delimited JSON events. Lines may
// span chunks; only the unfinished tail is kept. Not thread-safe.
class LineSplitter {
 public:
  using LineCallback = std::function<bool(absl::string_view line)>;
  explicit LineSplitter(LineCallback on_line) : on_line_(std::move(on_line)) {}

  // Returns false when the callback asked to stop.
  bool Feed(absl::string_view chunk);
  // Bytes of an unfinished line held.
  size_t pending() const { return partial_.size(); }

 private:
  LineCallback on_line_;
  std::string partial_;
};

// Splits a List response ({"kind":..., "metadata": {...}, "items": [...]})
// into its items as they arrive. Each item's JSON text goes to the callback;
// everything else (kind, metadata with resourceVersion and continue) is kept
// with an empty items array and is available as `envelope()` at the end.
// Not thread-safe.
class ListItemSplitter {
 public:
  using ItemCallback = std::function<bool(absl::string_view item)>;
  explicit ListItemSplitter(ItemCallback on_item)
      : on_item_(std::move(on_item)) {}

  // Returns false when the callback asked to stop or the input is not JSON
  // of the expected shape (see status()).
  bool Feed(absl::string_view chunk);
  // Call after the last chunk; checks the document ended.
  absl::Status Finish();
  const std::string& envelope() const { return envelope_; }
  absl::Status status() const { return status_; }

 private:
  ItemCallback on_item_;
  std::string envelope_;
  std::string item_;
  std::string last_key_;
  std::string string_;  // The string being read at depth 1.
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool in_items_ = false;
  bool in_item_ = false;
  bool started_ = false;
  absl::Status status_;
};

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_STREAM_PARSER_H_
