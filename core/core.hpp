// The foundation every other folder builds on: errors, shapes, arrays and their allocator, the
// random generator, thread settings. No tape, no layers.
#pragma once

#include <xgrad/core/allocator.hpp>
#include <xgrad/core/array.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/generator.hpp>
#include <xgrad/core/precision.hpp>
#include <xgrad/core/shape.hpp>
#include <xgrad/core/threads.hpp>
