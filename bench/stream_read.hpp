// The streaming floor of the GPU matmul benchmark: a kernel that only reads a layer's worth of bytes and writes one
// word, timed in the same harness as the matmuls, so "what any kernel that reads these bytes once per call can reach
// here, launch and ramp included" is a measurement instead of bytes over copy bandwidth.
#pragma once

#include <cstddef>

namespace hilo::bench {

// Reads [data, data + bytes) (data 16-byte aligned; a tail of < 16 bytes is not read) with every SM busy and four
// 16-byte loads in flight per thread; writes *out only if the bytes xor to a magic value (so the loads stay).
// early: launched by programmatic dependent launch, reading before griddepcontrol.wait and writing after it, as the
// batch-1 GEMVs do. Returns a cudaError_t.
int stream_read(const void* data, std::size_t bytes, unsigned* out, void* stream, bool early);

}  // namespace hilo::bench
