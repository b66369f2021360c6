// The C++ helper layer compiles on its own as C++20 with the same flags as the
// C header: plugin authors include it first thing.
#include <oneds/plugin.hpp>
