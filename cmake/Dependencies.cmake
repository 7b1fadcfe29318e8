# Third-party packages, all from Debian: see scripts/packages.txt.
include(GNUInstallDirs)

find_package(xtl REQUIRED)
find_package(xsimd REQUIRED)
find_package(xtensor REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(OpenMP REQUIRED)

# OpenBLAS, found explicitly: the reference BLAS is ~30x slower and must never be picked by
# accident. The OpenMP build shares one thread pool with xgrad's own kernels; the pthread build
# is accepted when it is the only one present.
find_path(XGRAD_CBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/openblas
        /usr/include/x86_64-linux-gnu/openblas-pthread
  NO_DEFAULT_PATH)
find_library(XGRAD_OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/x86_64-linux-gnu/openblas-pthread
  NO_DEFAULT_PATH)
if(NOT XGRAD_CBLAS_INCLUDE_DIR OR NOT XGRAD_OPENBLAS_LIBRARY)
  find_path(XGRAD_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
  find_library(XGRAD_OPENBLAS_LIBRARY NAMES openblas)
endif()
if(NOT XGRAD_CBLAS_INCLUDE_DIR OR NOT XGRAD_OPENBLAS_LIBRARY)
  message(FATAL_ERROR "OpenBLAS not found: install libopenblas-openmp-dev (scripts/packages.txt)")
endif()
message(STATUS "xgrad: OpenBLAS ${XGRAD_OPENBLAS_LIBRARY}")

# SentencePiece (subword tokenizers): the processor library and the trainer, linked by full path
# so that the installed package names them for its users too.
find_path(XGRAD_SENTENCEPIECE_INCLUDE_DIR sentencepiece_processor.h)
find_library(XGRAD_SENTENCEPIECE_LIBRARY NAMES sentencepiece)
find_library(XGRAD_SENTENCEPIECE_TRAIN_LIBRARY NAMES sentencepiece_train)
if(NOT XGRAD_SENTENCEPIECE_INCLUDE_DIR OR NOT XGRAD_SENTENCEPIECE_LIBRARY OR NOT XGRAD_SENTENCEPIECE_TRAIN_LIBRARY)
  message(FATAL_ERROR "SentencePiece not found: install libsentencepiece-dev (scripts/packages.txt)")
endif()
message(STATUS "xgrad: SentencePiece ${XGRAD_SENTENCEPIECE_LIBRARY}")
