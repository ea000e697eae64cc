// The actors of a training job, spawned remotely by the ground station on
// the satellites the constellation file names (see docs/architecture.md):
//
//   "worker"     one per satellite. Holds a model replica at the parameter
//                version the parameter server last sent, takes tasks (one
//                micro-batch: step, index, window starts), reads the windows
//                from its satellite's chunks (fetching a chunk held elsewhere
//                from a replica), runs forward and backward on a detached
//                compute thread, and sends the gradients (TensorFrames) and a
//                TaskResult to the parameter server and the result to the
//                scheduler.
//   "ps"         the parameter server: master parameters and AdamW state.
//                Sync mode: a step is applied once all M micro-batch
//                gradients of the step are in, summed in micro-batch order,
//                so the result does not depend on arrival order or on the
//                number of workers; late or duplicate gradients are dropped.
//                New parameters go to every worker, versioned.
//   "scheduler"  keeps the task queue: draws each micro-batch's windows
//                exactly as train-local does, gives each task to the least
//                loaded live worker (preferring one that holds the data),
//                re-assigns the tasks of a worker that dies (CAF monitor) or
//                does not answer in time, and reports each applied step to
//                the ground.
//
// Set-up: each receives (job_init_atom, wire{JobSpec}, ...handles), connects
// to the satellites it talks to, and answers once ready. All job traffic is
// wire messages (Cap'n Proto envelopes).
#pragma once

#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>

namespace orbitrain {

caf::behavior job_worker_actor(caf::event_based_actor* self);
caf::behavior job_ps_actor(caf::event_based_actor* self);
caf::behavior job_scheduler_actor(caf::event_based_actor* self);

} // namespace orbitrain
