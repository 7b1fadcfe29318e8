// xgrad: everything a user needs, in one include.
#pragma once

#include <xgrad/autograd/autograd.hpp>
#include <xgrad/nn/nn.hpp>
#include <xgrad/optim/optim.hpp>
#include <xgrad/models/checkpoint.hpp>
#include <xgrad/models/decoding.hpp>
#include <xgrad/models/sampling.hpp>
#include <xgrad/models/transformer.hpp>
#include <xgrad/models/gpt.hpp>
#include <xgrad/models/encoder_classifier.hpp>
#include <xgrad/distributed/data_parallel.hpp>
#include <xgrad/distributed/distributed.hpp>
#include <xgrad/training/run_folder.hpp>
#include <xgrad/training/run_lock.hpp>
#include <xgrad/training/stop_signals.hpp>
