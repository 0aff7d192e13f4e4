/* ----------------------------------------------------------------------
   Included before every source (-include) where the LAMMPS build uses its bundled fmt but this
   compiler's C++20 library has std::format: a LAMMPS built with g++ 12 and a plugin built with
   g++ 13 (the GPU machine's compiler, against the LAMMPS that benchmarks/gpu/prebuild.sh builds
   on a machine with g++ 12). LAMMPS's fmt/format.h takes std::format where __cpp_lib_format is
   defined, and the plugin would then call Error::_all(..., std::format_args), which that
   liblammps does not have: the plugin would not load. CMakeLists.txt decides from liblammps's
   own Error::_all. <format> is included here once, so that no later include of it (through
   <chrono>, say) defines the macro again.
------------------------------------------------------------------------- */

#pragma once

#include <version>
#if defined(__cpp_lib_format)
#include <format>
#undef __cpp_lib_format
#endif
