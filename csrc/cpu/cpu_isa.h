#pragma once

#include <string>

namespace kron_attn::cpu {

// Name of the instruction set the CPU kernel uses: the widest this CPU supports, unless the
// environment variable KRON_ATTN_CPU_ISA (avx512, avx2, generic) asks for a narrower one.
std::string isa_name();

}  // namespace kron_attn::cpu
