# Third-party packages, all from Debian: see scripts/packages.txt.
include(GNUInstallDirs)

find_package(xtl REQUIRED)
find_package(xsimd REQUIRED)
find_package(xtensor REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(OpenMP REQUIRED)
# MPI (Open MPI from Debian) carries distributed/: a program started without mpirun never
# initialises it and runs as a world of one.
# Its C API from C++ (MPI_CXX_SKIP_MPICXX: not the deprecated C++ bindings).
set(MPI_CXX_SKIP_MPICXX ON)
find_package(MPI REQUIRED COMPONENTS CXX)

# oneDNN, the one GEMM library (kernels/gemm.cpp): its JIT picks kernels from the CPU's feature
# flags, so every x86-64 CPU gets its widest ISA with nothing set. Linked by full path (Debian's
# CMake package for it also requires the OpenCL headers, which xgrad does not use).
find_path(XGRAD_DNNL_INCLUDE_DIR dnnl.h PATH_SUFFIXES oneapi/dnnl)
find_library(XGRAD_DNNL_LIBRARY NAMES dnnl)
if(NOT XGRAD_DNNL_INCLUDE_DIR OR NOT XGRAD_DNNL_LIBRARY)
  message(FATAL_ERROR "oneDNN not found: install libdnnl-dev (scripts/packages.txt)")
endif()
message(STATUS "xgrad: oneDNN ${XGRAD_DNNL_LIBRARY}")

# SentencePiece (subword tokenizers): the processor library and the trainer, linked by full path
# so that the installed package names them for its users too.
find_path(XGRAD_SENTENCEPIECE_INCLUDE_DIR sentencepiece_processor.h)
find_library(XGRAD_SENTENCEPIECE_LIBRARY NAMES sentencepiece)
find_library(XGRAD_SENTENCEPIECE_TRAIN_LIBRARY NAMES sentencepiece_train)
if(NOT XGRAD_SENTENCEPIECE_INCLUDE_DIR OR NOT XGRAD_SENTENCEPIECE_LIBRARY OR NOT XGRAD_SENTENCEPIECE_TRAIN_LIBRARY)
  message(FATAL_ERROR "SentencePiece not found: install libsentencepiece-dev (scripts/packages.txt)")
endif()
message(STATUS "xgrad: SentencePiece ${XGRAD_SENTENCEPIECE_LIBRARY}")
