// Optimizers, gradient clipping and learning-rate schedules.
#pragma once

#include <xgrad/optim/adam.hpp>
#include <xgrad/optim/clip_grad.hpp>
#include <xgrad/optim/lr_scheduler.hpp>
#include <xgrad/optim/optimizer.hpp>
#include <xgrad/optim/sgd.hpp>
#include <xgrad/optim/state_dict.hpp>

