// The CPU kernel compiled for generic (portable code, no target flags).
// Everything that other translation units also compile is included before the target switch,
// so no inline function with generic code can be chosen by the linker for them.
#include <stdint.h>
#include <stdlib.h>

#include <new>
#include <type_traits>


#include "../schedule.h"
#include "kernel.h"

#define KA_CPU_ISA 0
#define KA_ISA_NS generic
#include "kernel_impl.h"

KA_DEFINE_KERNELS(kernels_generic, "generic")
