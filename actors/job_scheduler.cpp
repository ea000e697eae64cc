// The job's scheduler (job_actors.hpp).
#include "actors/job_actors.hpp"
#include "actors/job_common.hpp"
#include "actors/link_layer.hpp"
#include "actors/runtime.hpp"
#include "actors/satellite_actors.hpp"
#include "actors/wire_message.hpp"
#include "core/log.hpp"
#include "core/sysinfo.hpp"
#include "orbit/clock.hpp"
#include "orbit/guard.hpp"
#include "orbit/model.hpp"
#include "orbit/policy.hpp"
#include "storage/hash_ring.hpp"
#include "storage/store.hpp"
#include "storage/window_reader.hpp"

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/all.hpp>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace orbitrain {

using namespace job;
using namespace std::chrono_literals;

// ---- scheduler ---------------------------------------------------------------

namespace {

struct task_info {
  uint32_t step = 0;
  uint32_t micro_batch = 0;
  size_t worker = 0;
  std::vector<uint64_t> starts;
  std::chrono::steady_clock::time_point sent;
};

struct scheduler_state {
  msg::JobSpec spec;
  std::string job;
  std::vector<caf::actor> workers;
  std::vector<bool> alive;
  std::vector<uint32_t> load;           // tasks outstanding per worker
  std::vector<msg::LoadReport> reports; // the workers' latest load reports
  // Live workers by expected time to finish what they hold (tasks
  // outstanding x task time), kept up to date as loads and reports change:
  // choosing a worker walks it from the least loaded and stops early.
  std::set<std::pair<double, size_t>> by_load;
  std::vector<double> load_key;
  double known_ms = 0;               // the slowest task time any worker has reported
  std::vector<double> worker_rtt_ms; // per worker: moving average of task round trips
  double round_trip_ms = 0;          // moving average of task round trips
  uint32_t stragglers = 0;
  caf::actor ps, ground;
  msg::DatasetManifest manifest;
  std::unique_ptr<HashRing> ring;
  std::unique_ptr<cp::Rng> rng;
  uint64_t train_len = 0;
  uint64_t next_task = 1;
  std::map<uint64_t, task_info> outstanding;
  std::map<std::pair<uint64_t, uint32_t>, int> failures; // (step, micro-batch) -> failed tries
  uint32_t reassigned = 0;
  uint64_t next_index = 0;           // async: the next micro-batch to draw
  int64_t issued = -1;               // sync: the last step whose tasks went out
  std::set<uint32_t> issued_results; // sync: its micro-batches with a result
  bool ended = false;
  // Energy- and contact-aware scheduling (orbit/policy.hpp); the model is
  // this scheduler's own (one owner), null without [orbit].
  orbit::Policy policy = orbit::Policy::aware;
  std::unique_ptr<orbit::ConstellationModel> model;
  std::unique_ptr<orbit::SimClock> clock;
  orbit::PowerModel power;
  std::vector<int> slots; // per worker
  int ps_slot = -1;
  double model_wall = -1; // steady seconds of the model's last update
  struct parked_task {
    uint32_t step, micro_batch;
    std::vector<uint64_t> starts;
  };
  std::vector<parked_task> parked; // no worker may take them now (energy rule)
  uint64_t energy_deferrals = 0;
  // Workers that declined a task (their battery could not carry it): not
  // eligible until their next load report, which the energy rule judges.
  std::vector<bool> declined_by;
  uint32_t declined = 0; // tasks declined so far
};

// What the scheduler knows of each worker, for orbit::choose_worker; moves
// its model to the simulated now (at most every 100 ms).
// Re-files worker i in the scheduler's load order after its load, report
// or liveness changed.
void rekey(scheduler_state& st, size_t i) {
  st.by_load.erase({st.load_key[i], i});
  st.load_key[i] = st.load[i] * std::max(1.0, st.reports[i].step_time_ms);
  if (st.alive[i])
    st.by_load.insert({st.load_key[i], i});
}

// The simulated now, for the energy rule. Not the model's time, which lags
// it by up to 100 ms of wall time (6 s at time scale 60): a report sampled
// after that would count as sampled now, its worker as idle since, and the
// rule would pass where the worker's own guard, with the same charge and
// the true now, declines (which it did, back and forth, in the experiment).
double sim_now(const scheduler_state& st) {
  return st.clock ? st.clock->now() : 0;
}

// Moves the scheduler's model to the simulated now (at most every 100 ms).
void refresh_model(scheduler_state& st) {
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (st.model && wall - st.model_wall > 0.1) {
    st.model->update(st.clock->now());
    st.model_wall = wall;
  }
}

// Wall milliseconds the scheduler expects one task to keep worker i's
// compute thread busy: the longest of its recent tasks as it reports it,
// its moving averages of task time and round trip (a task occupies the
// compute thread, and so the battery, also while it waits there for
// parameters), or before its first report the slowest task time any worker
// reported (1 s before any).
double task_ms(const scheduler_state& st, size_t i, double known_ms) {
  const auto& r = st.reports[i];
  double ms = r.step_time_ms > 0 ? r.step_time_ms : known_ms > 0 ? known_ms : 1000;
  ms = std::max(ms, r.busy_max_ms);
  if (i < st.worker_rtt_ms.size())
    ms = std::max(ms, st.worker_rtt_ms[i]);
  return ms;
}

// What the scheduler knows of worker i, for orbit::choose_worker.
orbit::WorkerView view_of(const scheduler_state& st, size_t i,
                          const std::vector<std::string>& owners, double known_ms) {
  orbit::WorkerView w;
  {
    const auto& r = st.reports[i];
    w.alive = st.alive[i];
    w.load = st.load[i] * std::max(1.0, r.step_time_ms);
    w.holds_data = std::find(owners.begin(), owners.end(), st.spec.workers[i]) != owners.end();
    if (!st.model)
      return w;
    w.has_energy = r.has_energy;
    w.slot = st.slots[i];
    w.soc = r.state_of_charge;
    w.report_time = r.sim_time_s;
    w.sunlit = r.sunlit;
    w.ps_latency =
        w.slot >= 0 && st.ps_slot >= 0 ? st.model->latency(w.slot, st.ps_slot) : orbit::infinity;
    // The work a new task would end: the tasks it holds and the new one,
    // each at task_ms() (which includes the worker's longest recent task),
    // in simulated time, times the margin the worker's own guard uses too.
    w.task_s = orbit::energy_margin * (st.load[i] + 1) * task_ms(st, i, known_ms) / 1000 *
               st.clock->time_scale();
  }
  return w;
}

// Async: tasks kept in flight per live worker (one computing, one queued so
// the worker never waits for the scheduler).
constexpr uint32_t async_tasks_per_worker = 2;

} // namespace

caf::behavior job_scheduler_actor(caf::event_based_actor* self) {
  join_supervisor(self);
  auto st = std::make_shared<scheduler_state>();
  // The least loaded live worker, preferring one that holds the chunk where
  // the task's first window starts. Loads live in a small ordered set.
  // Priority by expected time to finish what a worker already has: tasks
  // outstanding times its reported task time (1 ms when not yet known); the
  // aware policy drops workers the energy rule forbids (*blocked: some are
  // alive, none may take it) and prefers sunlight and nearness to the
  // parameter server (orbit/policy.hpp).
  auto choose = [st](uint64_t first_start, bool* blocked) -> std::optional<size_t> {
    uint64_t off = 0;
    size_t chunk = 0;
    while (chunk + 1 < st->manifest.chunk_sizes.size() &&
           off + st->manifest.chunk_sizes[chunk] <= first_start)
      off += st->manifest.chunk_sizes[chunk++];
    auto owners = st->ring->owners(st->manifest.chunk_hashes[chunk],
                                   std::max<uint32_t>(1, st->manifest.replicas));
    // Walk the workers from the least loaded: the first eligible one sets
    // the least load; its equals are the candidates. (Eligible: any live
    // worker for the load policy; for the aware one, the energy and
    // contact rules of orbit/policy.hpp.)
    refresh_model(*st);
    const bool aware = st->policy == orbit::Policy::aware && st->model;
    const double now = sim_now(*st);
    const int cores = static_cast<int>(std::max<uint32_t>(1, st->spec.threads));
    std::vector<orbit::WorkerView> tier;
    std::vector<size_t> index;
    for (const auto& [key, i] : st->by_load) {
      if (!tier.empty() && key > tier.front().load)
        break;
      if (st->declined_by[i])
        continue;
      auto v = view_of(*st, i, owners, st->known_ms);
      if (aware && (!orbit::energy_allows(*st->model, st->power, v, now, v.task_s, cores) ||
                    !(v.ps_latency < orbit::infinity)))
        continue;
      tier.push_back(v);
      index.push_back(i);
    }
    auto c = orbit::choose_worker(st->policy, tier, st->model.get(), st->power, now, 0, cores);
    if (c.worker)
      c.worker = index[*c.worker];
    else
      c.energy_blocked = !st->by_load.empty();
    *blocked = c.energy_blocked;
    return c.worker;
  };
  // Sends a task to `to`, or to the best worker for it.
  auto send_task = [self, st, choose](uint32_t step, uint32_t mb, std::vector<uint64_t> starts,
                                      std::optional<size_t> to = std::nullopt) {
    bool blocked = false;
    auto w = to ? to : choose(starts.front(), &blocked);
    if (!w && blocked) { // held until a worker may take it (retried every tick)
      ++st->energy_deferrals;
      st->parked.push_back({step, mb, std::move(starts)});
      return true;
    }
    if (!w)
      return false;
    const uint64_t id = st->next_task++;
    msg::TaskAssignment t;
    t.task_id = id;
    t.step = step;
    t.micro_batch = mb;
    t.param_version = step; // sync: computed on the parameters after `step` steps
                            // (async: on whatever the worker has)
    t.dataset = st->spec.dataset;
    t.window_starts = starts;
    t.window_length = static_cast<uint32_t>(
        cp::GptConfig::from_json(nlohmann::json::parse(st->spec.model_config)).block_size + 1);
    // The aware policy tells the worker what it planned the task for; the
    // worker's guard uses it until it has timed tasks of its own.
    if (st->policy == orbit::Policy::aware && st->model)
      t.planned_s =
          orbit::energy_margin * task_ms(*st, *w, st->known_ms) / 1000 * st->clock->time_scale();
    st->outstanding[id] =
        task_info{step, mb, *w, std::move(starts), std::chrono::steady_clock::now()};
    ++st->load[*w];
    rekey(*st, *w);
    link_send(self, st->workers[*w], st->spec.workers[*w],
              make_wire(me(self), std::move(t), st->job));
    return true;
  };
  // The windows of micro-batch `index` (s*M + k for micro-batch k of step s
  // in sync mode), drawn exactly as train-local's get_batch draws that batch.
  auto windows_of = [st](uint64_t index) {
    const int T = cp::GptConfig::from_json(nlohmann::json::parse(st->spec.model_config)).block_size;
    const uint64_t windows = (st->train_len - 1) / static_cast<uint64_t>(T);
    std::vector<uint64_t> starts;
    for (uint32_t b = 0; b < st->spec.micro_batch; ++b) {
      if (st->spec.sampler == "sequential")
        starts.push_back(((index * st->spec.micro_batch + b) % windows) * uint64_t(T));
      else
        starts.push_back(st->rng->next_u64() % (st->train_len - static_cast<uint64_t>(T)));
    }
    return starts;
  };
  auto no_worker_left = [self, st] {
    st->ended = true;
    self->send(st->ground, job_end_atom_v,
               make_wire(me(self), msg::ErrorReply{"unreachable", "no worker is left", "job"}));
  };
  auto issue_step = [st, send_task, windows_of, no_worker_left](uint32_t s) {
    st->issued = s;
    st->issued_results.clear();
    for (uint32_t k = 0; k < st->spec.micro_batches_per_step; ++k)
      if (!send_task(s, k, windows_of(uint64_t{s} * st->spec.micro_batches_per_step + k))) {
        no_worker_left();
        return;
      }
  };
  // Async: keeps every live worker supplied with tasks: a worker that waits
  // for a task would compute on parameters older than it needs to.
  auto may_take = [st](size_t i) {
    if (st->declined_by[i])
      return false;
    if (st->policy != orbit::Policy::aware || !st->model)
      return true;
    refresh_model(*st);
    const auto v = view_of(*st, i, {}, st->known_ms);
    return v.ps_latency < orbit::infinity &&
           orbit::energy_allows(*st->model, st->power, v, sim_now(*st), v.task_s,
                                static_cast<int>(std::max<uint32_t>(1, st->spec.threads)));
  };
  auto keep_busy = [st, send_task, windows_of, no_worker_left, may_take] {
    if (st->ended)
      return;
    if (std::find(st->alive.begin(), st->alive.end(), true) == st->alive.end()) {
      no_worker_left();
      return;
    }
    for (size_t i = 0; i < st->workers.size(); ++i)
      while (st->alive[i] && st->load[i] < async_tasks_per_worker && may_take(i)) {
        const uint64_t index = st->next_index++;
        send_task(0, static_cast<uint32_t>(index), windows_of(index), i);
      }
  };
  // Tasks the energy rule held back: tried again on every tick and load report.
  auto retry_parked = [st, send_task, keep_busy] {
    auto parked = std::move(st->parked);
    st->parked.clear();
    for (auto& t : parked)
      send_task(t.step, t.micro_batch, std::move(t.starts));
    if (st->spec.mode == "async")
      keep_busy();
  };
  auto reassign = [st, send_task, no_worker_left](uint64_t id) {
    auto it = st->outstanding.find(id);
    if (it == st->outstanding.end())
      return;
    task_info t = it->second;
    st->outstanding.erase(it);
    if (st->load[t.worker] > 0)
      --st->load[t.worker];
    rekey(*st, t.worker);
    ++st->reassigned;
    log_warn("re-assigning task " + std::to_string(id) + " (step " + std::to_string(t.step) +
             ", micro-batch " + std::to_string(t.micro_batch) + ") of " +
             st->spec.workers[t.worker]);
    if (!send_task(t.step, t.micro_batch, t.starts))
      no_worker_left();
  };
  self->set_down_handler([self, st, reassign](caf::down_msg& dm) {
    for (size_t i = 0; i < st->workers.size(); ++i)
      if (st->alive[i] && st->workers[i].address() == dm.source) {
        st->alive[i] = false;
        rekey(*st, i);
        log_warn("worker on " + st->spec.workers[i] + " is gone: " + to_string(dm.reason));
        std::vector<uint64_t> mine;
        for (const auto& [id, t] : st->outstanding)
          if (t.worker == i)
            mine.push_back(id);
        for (auto id : mine)
          reassign(id);
      }
  });
  return {
      [self, st](job_init_atom, const wire& spec_wire, caf::actor ps,
                 std::vector<caf::actor> workers, caf::actor ground) -> caf::result<wire> {
        auto in = read_spec(spec_wire);
        if (!in)
          return bad_spec_reply(self);
        st->spec = in->spec;
        st->job = in->job;
        st->ps = ps;
        st->ground = ground;
        st->workers = std::move(workers);
        st->alive.assign(st->workers.size(), true);
        st->load.assign(st->workers.size(), 0);
        st->reports.assign(st->workers.size(), msg::LoadReport{});
        st->worker_rtt_ms.assign(st->workers.size(), 0);
        st->load_key.assign(st->workers.size(), 0);
        st->declined_by.assign(st->workers.size(), false);
        for (size_t i = 0; i < st->workers.size(); ++i)
          rekey(*st, i);
        auto& ctx = node_context(self->home_system());
        auto m = ctx.store ? ctx.store->get_manifest(st->spec.dataset)
                           : Result<msg::DatasetManifest>(make_error(Errc::not_found, "no store"));
        if (!m)
          return make_wire(me(self), msg::ErrorReply{"not_found", m.error().message, "jobSpec"});
        st->manifest = std::move(*m);
        std::vector<std::string> ids;
        for (const auto& s : st->spec.satellites)
          ids.push_back(s.id);
        st->ring = std::make_unique<HashRing>(ids);
        st->rng = std::make_unique<cp::Rng>(st->spec.seed);
        st->policy = orbit::parse_policy(st->spec.scheduler_policy).value_or(orbit::Policy::aware);
        if (ctx.orbit) { // the scheduler's own model, for the energy rule and latencies
          const auto& file = ctx.orbit->file();
          st->model = std::make_unique<orbit::ConstellationModel>(orbit::model_spec(file));
          st->ps_slot = ctx.orbit->slot_of(st->spec.parameter_server);
          for (const auto& id : st->spec.workers)
            st->slots.push_back(ctx.orbit->slot_of(id));
          st->model->set_targets({st->ps_slot});
          st->clock = std::make_unique<orbit::SimClock>(
              wall_clock(), file.orbit->start(), file.orbit->time_scale, file.orbit->epoch_unix);
          st->power = orbit::power_model(file.energy);
        }
        st->train_len = st->manifest.total_bytes * 9 / 10;
        auto rp = self->make_response_promise<wire>();
        std::vector<std::string> peers = st->spec.workers;
        peers.push_back(st->spec.parameter_server);
        connect_all(
            self, st->spec, peers, "",
            [self, st, rp](std::string err, std::vector<caf::actor>) mutable {
              if (err.empty())
                for (auto& w : st->workers)
                  self->monitor(w);
              rp.deliver(err.empty()
                             ? make_wire(me(self), msg::StepDone{}, st->job)
                             : make_wire(me(self), msg::ErrorReply{"unreachable", err, "jobSpec"}));
            });
        return rp;
      },
      [self, st, issue_step, keep_busy](job_start_atom) {
        if (st->spec.mode == "async") {
          // Every gradient is a step: a resumed job continues the sequence
          // of micro-batches (random draws are fresh ones).
          st->next_index = st->spec.start_step;
          keep_busy();
        } else {
          // A resumed job replays the sampler's draws up to its first step.
          if (st->spec.sampler != "sequential")
            for (uint64_t k = 0; k < uint64_t{st->spec.start_step} *
                                         st->spec.micro_batches_per_step * st->spec.micro_batch;
                 ++k)
              (void)st->rng->next_u64();
          issue_step(st->spec.start_step);
        }
        self->delayed_send(self, std::chrono::seconds(1), tick_atom_v);
      },
      [self, st, reassign, retry_parked](tick_atom) {
        if (st->model && !st->ended)
          retry_parked();
        const auto now = std::chrono::steady_clock::now();
        std::vector<uint64_t> late;
        for (const auto& [id, t] : st->outstanding)
          if (now - t.sent > std::chrono::milliseconds(st->spec.task_timeout_ms))
            late.push_back(id);
        for (auto id : late)
          reassign(id);
        self->delayed_send(self, std::chrono::seconds(1), tick_atom_v);
      },
      [self, st, issue_step, reassign, keep_busy, retry_parked, send_task,
       no_worker_left](const wire& w) {
        auto env = open_or_warn(w, "scheduler");
        if (!env)
          return;
        if (auto* lr = std::get_if<msg::LoadReport>(&env->body)) {
          for (size_t i = 0; i < st->spec.workers.size(); ++i)
            if (st->spec.workers[i] == lr->worker) {
              st->reports[i] = *lr;
              st->declined_by[i] = false;
              st->known_ms = std::max(st->known_ms, lr->step_time_ms);
              rekey(*st, i);
            }
          if (st->model && !st->ended && (!st->parked.empty() || st->spec.mode == "async"))
            retry_parked();
          return;
        }
        if (auto* r = std::get_if<msg::TaskResult>(&env->body)) {
          if (r->declined) {
            // The worker's battery cannot carry the task: another worker
            // takes it (or it waits, parked, for one that may). Neither a
            // failure nor a straggler, and no round trip to learn from.
            auto it = st->outstanding.find(r->task_id);
            if (it == st->outstanding.end())
              return; // re-assigned meanwhile
            const task_info t = it->second;
            st->outstanding.erase(it);
            if (st->load[t.worker] > 0)
              --st->load[t.worker];
            st->declined_by[t.worker] = true;
            rekey(*st, t.worker);
            ++st->declined;
            if (!send_task(t.step, t.micro_batch, t.starts))
              no_worker_left();
            return;
          }
          if (!r->error_message.empty()) {
            log_warn("task " + std::to_string(r->task_id) + " failed on " + env->sender + ": " +
                     r->error_message);
            // Another worker may manage (e.g. it reaches a replica); give up
            // after a few tries, telling the ground why.
            if (st->outstanding.count(r->task_id)) {
              if (++st->failures[{r->step, r->micro_batch}] > 3)
                self->send(
                    st->ground, job_end_atom_v,
                    make_wire(me(self), msg::ErrorReply{"task_failed", r->error_message, "job"}));
              else
                reassign(r->task_id);
            }
            return;
          }
          auto it = st->outstanding.find(r->task_id);
          if (it != st->outstanding.end()) {
            // A straggler takes over three times the usual round trip.
            const double ms = std::chrono::duration<double, std::milli>(
                                  std::chrono::steady_clock::now() - it->second.sent)
                                  .count();
            if (st->round_trip_ms > 0 && ms > 3 * st->round_trip_ms && ms > 50) {
              ++st->stragglers;
              log_warn("straggler: task " + std::to_string(r->task_id) + " on " + env->sender +
                       " took " + std::to_string(static_cast<int>(ms)) + " ms (usual " +
                       std::to_string(static_cast<int>(st->round_trip_ms)) + " ms)");
            }
            st->round_trip_ms = st->round_trip_ms == 0 ? ms : 0.9 * st->round_trip_ms + 0.1 * ms;
            auto& rtt = st->worker_rtt_ms[it->second.worker];
            rtt = rtt == 0 ? ms : 0.8 * rtt + 0.2 * ms;
            if (st->load[it->second.worker] > 0)
              --st->load[it->second.worker];
            rekey(*st, it->second.worker);
            const auto t = it->second;
            st->outstanding.erase(it);
            // Sync: once every micro-batch of the step has a result, the
            // next step's tasks go out at once: workers then start as soon
            // as the first frames of the new parameters arrive, while the
            // parameter server's update is still streaming the rest.
            if (st->spec.mode != "async" && int64_t{t.step} == st->issued) {
              st->issued_results.insert(t.micro_batch);
              if (st->issued_results.size() == st->spec.micro_batches_per_step &&
                  t.step + 1 < st->spec.steps)
                issue_step(t.step + 1);
            }
          }
          if (st->spec.mode == "async")
            keep_busy();
          return;
        }
        if (auto* d = std::get_if<msg::StepDone>(&env->body)) {
          d->reassigned = st->reassigned;
          d->declined = st->declined;
          d->stragglers = st->stragglers;
          for (const auto& r : st->reports) {
            d->queue_depth.push_back(r.tasks_queued);
            d->task_time_ms.push_back(r.step_time_ms);
          }
          const bool async = st->spec.mode == "async";
          // Sync: tasks of the finished step still out are stale now.
          for (auto it = st->outstanding.begin(); !async && it != st->outstanding.end();)
            if (it->second.step <= d->step) {
              if (st->load[it->second.worker] > 0)
                --st->load[it->second.worker];
              rekey(*st, it->second.worker);
              it = st->outstanding.erase(it);
            } else {
              ++it;
            }
          self->send(st->ground, make_wire(me(self), *d, st->job));
          if (d->step + 1 < st->spec.steps) {
            if (!async && st->issued < int64_t{d->step} + 1)
              issue_step(d->step + 1);
          } else {
            st->ended = true;
            self->send(st->ground, job_end_atom_v, make_wire(me(self), *d, st->job));
          }
        }
      },
  };
}

} // namespace orbitrain
