// Shared plumbing of the checkpoint-to-checkpoint jobs (quantize, dequantize): the output directory's layout
// (same shard names, an index where the input had one, the model directory's other files copied).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "hilo/safetensors.hpp"

namespace hilo::lords::detail {

// The input shards' output names: the shard file names, or "model.safetensors" for a single-file input.
std::vector<std::string> output_shard_names(const Checkpoint& checkpoint);
bool is_sharded(const Checkpoint& checkpoint);
// Copies the model directory's regular files other than safetensors shards and the index (config.json, tokenizer
// files, ...) into `out_dir`. Nothing for a single-file input.
void copy_side_files(const std::string& model, const std::string& out_dir);
// model.safetensors.index.json for the written shards: weight_map of every tensor, metadata.total_size.
void write_index(const std::string& out_dir, const std::map<std::string, std::string>& weight_map,
                 std::size_t total_size);
// The shard's metadata without hilo's layer entries (e.g. {"format": "pt"}).
Metadata plain_metadata(const Metadata& metadata);
// A contiguous, aligned f32 copy is not needed: this gives a view of a mapped tensor that typed code may read
// (copying into `storage` only when the mapped bytes are not aligned for the dtype).
TensorView aligned_view(const TensorEntry& entry, std::vector<std::byte>& storage);

}  // namespace hilo::lords::detail
