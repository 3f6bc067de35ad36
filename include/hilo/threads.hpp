// Thread counts: every parallel hilo call takes `threads`, where 0 means every hardware thread.
#pragma once

namespace hilo {

int resolve_threads(int requested);

}  // namespace hilo
