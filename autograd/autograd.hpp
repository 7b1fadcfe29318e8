// The autograd engine: Tensor, the tape, every differentiable op, gradcheck.
#pragma once

#include <xgrad/core/core.hpp>

#include <xgrad/autograd/broadcast.hpp>
#include <xgrad/autograd/dot.hpp>
#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/ops/dropout.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/ops/embedding.hpp>
#include <xgrad/autograd/ops/layer_norm.hpp>
#include <xgrad/autograd/ops/loss.hpp>
#include <xgrad/autograd/ops/masking.hpp>
#include <xgrad/autograd/ops/matmul.hpp>
#include <xgrad/autograd/ops/reduction.hpp>
#include <xgrad/autograd/ops/shape_ops.hpp>
#include <xgrad/autograd/ops/softmax.hpp>
#include <xgrad/autograd/profiler.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/autograd/tensor.hpp>
#include <xgrad/kernels/runtime_info.hpp>
