// Wire codec: every message kind round-trips field for field; malformed input
// (random bytes, truncation, wrong version, trailing bytes, oversize,
// traversal-limit violations, missing fields, inconsistent tensor slices) is
// an error value, never a crash; tensor sets split into frames reassemble in
// any order.
#include "schemas/codec.hpp"
#include "schemas/wire.capnp.h"

#include <algorithm>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <cstring>
#include <gtest/gtest.h>
#include <random>

using namespace orbitrain;
using namespace orbitrain::msg;

namespace {

Envelope envelope(Body body) {
  Envelope e;
  e.job_id = "job-7";
  e.sender = "sat-2";
  e.sent_at_ns = 123456789;
  e.body = std::move(body);
  return e;
}

Envelope roundtrip(const Envelope& e) {
  auto bytes = encode(e);
  auto back = decode(bytes);
  EXPECT_TRUE(back.ok()) << (back.ok() ? "" : back.error().message);
  EXPECT_EQ(back->job_id, e.job_id);
  EXPECT_EQ(back->sender, e.sender);
  EXPECT_EQ(back->sent_at_ns, e.sent_at_ns);
  EXPECT_EQ(back->body.index(), e.body.index());
  return std::move(back).value();
}

std::vector<uint8_t> bytes_of(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<uint8_t>(i * 31 + seed);
  return v;
}

} // namespace

TEST(Codec, ProbeAndStatusRoundTrip) {
  auto p = roundtrip(envelope(ProbeRequest{42}));
  EXPECT_EQ(std::get<ProbeRequest>(p.body).nonce, 42u);
  NodeStatus s;
  s.node_id = "sat-3";
  s.nonce = 9;
  s.uptime_ms = 1000;
  s.pid = 77;
  s.actors_running = 5;
  s.supervised_actors = 2;
  s.cpu_count = 2;
  s.load1 = 0.5;
  s.process_cpu_seconds = 1.25;
  s.rss_bytes = 1 << 20;
  s.mem_total_bytes = 1ull << 34;
  s.mem_available_bytes = 1ull << 33;
  auto back = std::get<NodeStatus>(roundtrip(envelope(s)).body);
  EXPECT_EQ(back.node_id, "sat-3");
  EXPECT_EQ(back.nonce, 9u);
  EXPECT_EQ(back.pid, 77u);
  EXPECT_EQ(back.supervised_actors, 2u);
  EXPECT_DOUBLE_EQ(back.load1, 0.5);
  EXPECT_EQ(back.mem_total_bytes, 1ull << 34);
}

TEST(Codec, LoadReportRoundTrip) {
  LoadReport r{"sat-1", 3, 99, 12.5, 0.7, 100, 200, 17};
  auto b = std::get<LoadReport>(roundtrip(envelope(r)).body);
  EXPECT_EQ(b.worker, "sat-1");
  EXPECT_EQ(b.tasks_queued, 3u);
  EXPECT_EQ(b.tasks_done, 99u);
  EXPECT_DOUBLE_EQ(b.step_time_ms, 12.5);
  EXPECT_EQ(b.param_version, 17u);
  EXPECT_EQ(b.busy_max_ms, 0.0);
  r.busy_max_ms = 812.5;
  EXPECT_DOUBLE_EQ(std::get<LoadReport>(roundtrip(envelope(r)).body).busy_max_ms, 812.5);
}

TEST(Codec, DataChunkRoundTrip) {
  DataChunk c;
  c.dataset = "shakespeare";
  c.index = 12;
  for (size_t i = 0; i < 32; ++i)
    c.sha256[i] = static_cast<uint8_t>(i);
  c.data = bytes_of(1 << 20, 3);
  auto b = std::get<DataChunk>(roundtrip(envelope(c)).body);
  EXPECT_EQ(b.dataset, c.dataset);
  EXPECT_EQ(b.index, 12u);
  EXPECT_EQ(b.sha256, c.sha256);
  EXPECT_EQ(b.data, c.data);
}

TEST(Codec, BorrowedChunkBytesEncodeAndDecodeLikeOwnedOnes) {
  // Sizes that are and are not whole words; data that is and is not aligned.
  for (size_t size : {size_t{1} << 20, size_t{4093}, size_t{0}}) {
    for (size_t shift : {size_t{0}, size_t{3}}) {
      const auto data = bytes_of(size, 5);
      std::vector<uint8_t> holder(size + shift + 8);
      std::copy(data.begin(), data.end(), holder.begin() + static_cast<ptrdiff_t>(shift));
      DataChunk meta{"ds", 9, {}, {}};
      meta.sha256[0] = 0xab;
      auto bytes = encode_chunk(envelope(meta), ByteView{holder.data() + shift, size});
      ASSERT_TRUE(bytes.ok()) << bytes.error().message;
      auto owned = decode(*bytes);
      ASSERT_TRUE(owned.ok()) << size << "+" << shift << ": " << owned.error().message;
      auto c = std::get<DataChunk>(owned->body);
      EXPECT_EQ(c.dataset, "ds");
      EXPECT_EQ(c.index, 9u);
      EXPECT_EQ(c.sha256, meta.sha256);
      EXPECT_EQ(c.data, data) << size << " bytes at offset " << shift;

      ByteView view;
      auto borrowed = decode_borrowing(bytes->data(), bytes->size(), view);
      ASSERT_TRUE(borrowed.ok()) << borrowed.error().message;
      EXPECT_TRUE(std::get<DataChunk>(borrowed->body).data.empty());
      ASSERT_EQ(view.size, size);
      EXPECT_TRUE(std::equal(data.begin(), data.end(), view.data));
      if (size > 0) {
        EXPECT_GE(view.data, bytes->data()) << "the bytes are not copied";
        EXPECT_LE(view.data + view.size, bytes->data() + bytes->size());
      }
    }
  }
  // Not a data chunk, or one with bytes of its own: refused.
  EXPECT_FALSE(encode_chunk(envelope(ProbeRequest{1}), {}).ok());
  EXPECT_FALSE(encode_chunk(envelope(DataChunk{"d", 0, {}, {1, 2}}), {}).ok());
}

TEST(Codec, BorrowingDecodeOfUnalignedInputCopiesTheChunk) {
  auto bytes = encode(envelope(DataChunk{"d", 1, {}, bytes_of(5000, 2)}));
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
  ByteView view;
  auto r = decode_borrowing(shifted.data() + 1, bytes.size(), view);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& c = std::get<DataChunk>(r->body);
  EXPECT_EQ(view.data, c.data.data());
  EXPECT_EQ(c.data, bytes_of(5000, 2));
  // Other kinds decode as usual, with an empty view.
  auto probe = encode(envelope(ProbeRequest{4}));
  ASSERT_TRUE(decode_borrowing(probe.data(), probe.size(), view).ok());
  EXPECT_EQ(view.size, 0u);
  // Errors leave the view empty.
  bytes.resize(bytes.size() - 8);
  EXPECT_FALSE(decode_borrowing(bytes.data(), bytes.size(), view).ok());
  EXPECT_EQ(view.data, nullptr);
}

TEST(Codec, ChunkDamagedOnTheWayIsRefused) {
  // Owned and borrowed encodings carry the CRC32C of the bytes; a flipped
  // byte of the data, anywhere, fails decoding with Errc::corrupt (and the
  // chunk's index and dataset in the message), owned or borrowed.
  const auto data = bytes_of(64 * 1024, 6);
  DataChunk meta{"ds", 41, {}, {}};
  auto owned = encode(envelope(DataChunk{"ds", 41, {}, data}));
  auto borrowed = encode_chunk(envelope(meta), ByteView{data.data(), data.size()});
  ASSERT_TRUE(borrowed.ok());
  for (auto* bytes : {&owned, &*borrowed}) {
    ASSERT_TRUE(decode(*bytes).ok());
    // The data is the longest run of the message: find it and damage it.
    auto at = std::search(bytes->begin(), bytes->end(), data.begin(), data.begin() + 64);
    ASSERT_NE(at, bytes->end());
    for (size_t offset : {size_t{0}, size_t{12345}, data.size() - 1}) {
      auto damaged = *bytes;
      damaged[static_cast<size_t>(at - bytes->begin()) + offset] ^= 0x10;
      auto r = decode(damaged);
      ASSERT_FALSE(r.ok()) << "byte " << offset;
      EXPECT_EQ(r.error().code, Errc::corrupt);
      EXPECT_NE(r.error().message.find("CRC32C"), std::string::npos) << r.error().message;
      EXPECT_NE(r.error().message.find("chunk 41 of 'ds'"), std::string::npos) << r.error().message;
      ByteView view;
      EXPECT_FALSE(decode_borrowing(damaged.data(), damaged.size(), view).ok());
      EXPECT_EQ(view.data, nullptr);
    }
  }
}

TEST(Codec, TaskMessagesRoundTrip) {
  TaskAssignment a{5, 2, 1, 4, "ds", {0, 65, 130}, 65};
  auto ab = std::get<TaskAssignment>(roundtrip(envelope(a)).body);
  EXPECT_EQ(ab.task_id, 5u);
  EXPECT_EQ(ab.window_starts, a.window_starts);
  EXPECT_EQ(ab.window_length, 65u);
  EXPECT_EQ(ab.planned_s, 0.0);
  a.planned_s = 240.5;
  EXPECT_DOUBLE_EQ(std::get<TaskAssignment>(roundtrip(envelope(a)).body).planned_s, 240.5);
  TaskResult r{5, 2, 1, 4, 2.75, 4096, 33.0, 3, ""};
  auto rb = std::get<TaskResult>(roundtrip(envelope(r)).body);
  EXPECT_EQ(rb.gradient_frames, 3u);
  EXPECT_DOUBLE_EQ(rb.loss, 2.75);
  EXPECT_FALSE(rb.declined);
  TaskResult declined;
  declined.task_id = 8;
  declined.declined = true;
  auto dr = std::get<TaskResult>(roundtrip(envelope(declined)).body);
  EXPECT_TRUE(dr.declined);
  EXPECT_EQ(dr.task_id, 8u);
  EXPECT_TRUE(dr.error_message.empty());
  ErrorReply e{"malformed_message", "bad", "dataChunk"};
  auto eb = std::get<ErrorReply>(roundtrip(envelope(e)).body);
  EXPECT_EQ(eb.code, "malformed_message");
  EXPECT_EQ(eb.in_reply_to, "dataChunk");
}

TEST(Codec, JobSpecAndStepDoneRoundTrip) {
  JobSpec j;
  j.dataset = "ds";
  j.model_config = "{}";
  j.steps = 9;
  j.micro_batch = 2;
  j.micro_batches_per_step = 3;
  j.mode = "async";
  j.staleness = 3;
  j.workers = {"a", "b"};
  auto jb = std::get<JobSpec>(roundtrip(envelope(j)).body);
  EXPECT_EQ(jb.mode, "async");
  EXPECT_EQ(jb.staleness, 3u);
  EXPECT_EQ(jb.steps, 9u);
  EXPECT_EQ(jb.workers, j.workers);
  j.mode = "hogwild";
  auto bad = encode(envelope(j));
  auto err = decode(bad);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.error().message.find("jobSpec.mode"), std::string::npos) << err.error().message;
  StepDone d;
  d.step = 4;
  d.staleness = 2;
  d.refused = 7;
  d.declined = 3;
  d.val_loss = 1.5;
  auto db = std::get<StepDone>(roundtrip(envelope(d)).body);
  EXPECT_EQ(db.staleness, 2u);
  EXPECT_EQ(db.refused, 7u);
  EXPECT_EQ(db.declined, 3u);
  EXPECT_EQ(db.val_loss, std::optional<double>(1.5));
}

TEST(Codec, TensorFrameRoundTrip) {
  TensorFrame f;
  f.kind = TensorKind::gradients;
  f.version = 3;
  f.step = 4;
  f.task_id = 5;
  f.total_bytes = 24;
  f.micro_batch = 2;
  f.slices.push_back(TensorSlice{"w", DType::f32, {2, 3}, 0, bytes_of(24, 1)});
  auto b = std::get<TensorFrame>(roundtrip(envelope(f)).body);
  EXPECT_EQ(b.kind, TensorKind::gradients);
  EXPECT_EQ(b.micro_batch, 2u);
  ASSERT_EQ(b.slices.size(), 1u);
  EXPECT_EQ(b.slices[0].name, "w");
  EXPECT_EQ(b.slices[0].shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(b.slices[0].data, f.slices[0].data);
}

TEST(Codec, KindNames) {
  EXPECT_STREQ(kind_name(Body{DataChunk{}}), "dataChunk");
  EXPECT_STREQ(kind_name(Body{ErrorReply{}}), "error");
}

TEST(Codec, RandomBytesAreErrorsNotCrashes) {
  std::mt19937_64 rng(1234);
  int errors = 0;
  for (int i = 0; i < 2000; ++i) {
    size_t n = 8 * (1 + rng() % 64);
    std::vector<uint8_t> junk(n);
    for (auto& b : junk)
      b = static_cast<uint8_t>(rng());
    auto r = decode(junk);
    if (!r.ok())
      ++errors;
  }
  // Random bytes essentially never form a valid envelope from "sat-..."
  EXPECT_GT(errors, 1990);
}

TEST(Codec, MutatedValidMessagesNeverCrash) {
  TensorFrame f;
  f.slices.push_back(TensorSlice{"w", DType::f32, {4}, 0, bytes_of(16, 1)});
  f.total_bytes = 16;
  auto good = encode(envelope(f));
  std::mt19937_64 rng(99);
  for (int i = 0; i < 5000; ++i) {
    auto m = good;
    for (int k = 0; k < 3; ++k)
      m[rng() % m.size()] = static_cast<uint8_t>(rng());
    (void)decode(m); // must return, valid or not
  }
  SUCCEED();
}

TEST(Codec, TruncatedInput) {
  auto bytes = encode(envelope(DataChunk{"d", 0, {}, bytes_of(1000, 1)}));
  for (size_t cut : {size_t{0}, size_t{4}, size_t{8}, bytes.size() / 2, bytes.size() - 8}) {
    auto r = decode(bytes.data(), cut);
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_EQ(r.error().code, Errc::malformed_message) << r.error().message;
  }
  auto odd = decode(bytes.data(), bytes.size() - 3);
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.error().message.find("8-byte words"), std::string::npos);
}

TEST(Codec, TrailingBytesRejected) {
  auto bytes = encode(envelope(ProbeRequest{1}));
  bytes.resize(bytes.size() + 8, 0);
  auto r = decode(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("trailing"), std::string::npos);
}

TEST(Codec, WrongProtocolVersion) {
  auto e = envelope(ProbeRequest{1});
  e.protocol_version = 2;
  auto r = decode(encode(e));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::protocol_version);
  EXPECT_NE(r.error().message.find("protocol version 2"), std::string::npos);
}

TEST(Codec, MissingSender) {
  auto e = envelope(ProbeRequest{1});
  e.sender.clear();
  auto r = decode(encode(e));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::missing_field);
  EXPECT_NE(r.error().message.find("sender"), std::string::npos);
}

TEST(Codec, MissingFieldsInBodies) {
  // Built with the raw builder so fields can be left out.
  capnp::MallocMessageBuilder b;
  auto root = b.initRoot<wire::Envelope>();
  root.setProtocolVersion(protocol_version);
  root.setSender("sat-1");
  root.initBody().initDataChunk().setIndex(3);
  auto flat = capnp::messageToFlatArray(b);
  auto bytes = flat.asBytes();
  auto r = decode(bytes.begin(), bytes.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::missing_field);
  EXPECT_NE(r.error().message.find("dataChunk.dataset"), std::string::npos) << r.error().message;
}

TEST(Codec, BadChunkHashLength) {
  capnp::MallocMessageBuilder b;
  auto root = b.initRoot<wire::Envelope>();
  root.setProtocolVersion(protocol_version);
  root.setSender("sat-1");
  auto c = root.initBody().initDataChunk();
  c.setDataset("d");
  uint8_t h[5] = {};
  c.setSha256(capnp::Data::Reader(h, 5));
  c.setData(capnp::Data::Reader(h, 5));
  auto flat = capnp::messageToFlatArray(b);
  auto r = decode(flat.asBytes().begin(), flat.asBytes().size());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("32"), std::string::npos);
}

TEST(Codec, OversizedInputRefusedBeforeParsing) {
  auto bytes = encode(envelope(DataChunk{"d", 0, {}, bytes_of(1 << 20, 1)}));
  DecodeLimits small;
  small.max_message_bytes = 64 << 10;
  auto r = decode(bytes, small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::oversized_message);
}

TEST(Codec, TraversalLimitViolation) {
  // A list of 16 Mi zero-sized structs takes no space on the wire but counts
  // one word each against the traversal limit (an amplification attack).
  capnp::MallocMessageBuilder b;
  auto root = b.initRoot<wire::Envelope>();
  root.setProtocolVersion(protocol_version);
  root.setSender("sat-1");
  auto frame = root.initBody().initTensorFrame();
  frame.setFrameCount(1);
  capnp::toAny(frame).getPointerSection()[0].initAsListOfAnyStruct(0, 0, 1 << 24);
  auto flat = capnp::messageToFlatArray(b);
  auto bytes = flat.asBytes();
  ASSERT_LT(bytes.size(), 1024u);
  auto r = decode(bytes.begin(), bytes.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::oversized_message) << r.error().message;
}

TEST(Codec, SliceBeyondTensorRejected) {
  TensorFrame f;
  f.slices.push_back(TensorSlice{"w", DType::f32, {2}, 4, bytes_of(8, 1)});
  auto r = decode(encode(envelope(f)));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("(w)"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("exceeds"), std::string::npos) << r.error().message;
}

TEST(Codec, UnalignedBufferDecodes) {
  auto bytes = encode(envelope(ProbeRequest{5}));
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
  auto r = decode(shifted.data() + 1, bytes.size());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(std::get<ProbeRequest>(r->body).nonce, 5u);
}

namespace {

std::vector<Tensor> sample_tensors() {
  return {Tensor{"a", DType::f32, {3, 1000}, bytes_of(12000, 1)},
          Tensor{"b", DType::bf16, {7}, bytes_of(14, 2)}, Tensor{"empty", DType::f32, {0}, {}},
          Tensor{"c", DType::f64, {2500}, bytes_of(20000, 3)}};
}

} // namespace

TEST(Frames, SplitRespectsFrameSizeAndReassemblesInAnyOrder) {
  auto tensors = sample_tensors();
  TensorFrame header;
  header.kind = TensorKind::gradients;
  header.version = 9;
  header.step = 3;
  header.task_id = 11;
  auto frames = split_tensors(tensors, header, 4096);
  ASSERT_GT(frames.size(), 7u);
  for (const auto& f : frames) {
    size_t bytes = 0;
    for (const auto& s : f.slices)
      bytes += s.data.size();
    EXPECT_LE(bytes, 4096u);
    EXPECT_EQ(f.frame_count, frames.size());
    EXPECT_EQ(f.total_bytes, 32014u);
  }
  std::mt19937 rng(7);
  std::shuffle(frames.begin(), frames.end(), rng);
  FrameAssembler asm_;
  for (auto& f : frames) {
    // Through the codec, as on the wire.
    auto back = decode(encode(envelope(f)));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_FALSE(asm_.complete());
    ASSERT_TRUE(asm_.add(std::get<TensorFrame>(back->body)).ok());
  }
  ASSERT_TRUE(asm_.complete());
  auto out = asm_.take();
  ASSERT_TRUE(out.ok()) << out.error().message;
  ASSERT_EQ(out->size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ((*out)[i].name, tensors[i].name);
    EXPECT_EQ((*out)[i].dtype, tensors[i].dtype);
    EXPECT_EQ((*out)[i].shape, tensors[i].shape);
    EXPECT_EQ((*out)[i].data, tensors[i].data);
  }
}

TEST(Frames, OddFrameSizeKeepsWholeElements) {
  auto frames =
      split_tensors({Tensor{"a", DType::f32, {100}, bytes_of(400, 1)}}, TensorFrame{}, 10);
  for (const auto& f : frames)
    for (const auto& s : f.slices)
      EXPECT_EQ(s.data.size() % 4, 0u);
  FrameAssembler a;
  for (auto& f : frames)
    ASSERT_TRUE(a.add(f).ok());
  EXPECT_EQ(a.take()->at(0).data, bytes_of(400, 1));
}

TEST(Frames, DuplicateForeignAndIncompleteFramesRejected) {
  auto frames = split_tensors(sample_tensors(), TensorFrame{}, 4096);
  FrameAssembler a;
  ASSERT_TRUE(a.add(frames[0]).ok());
  auto dup = a.add(frames[0]);
  EXPECT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("duplicate"), std::string::npos);
  auto foreign = frames[1];
  foreign.version = 99;
  EXPECT_FALSE(a.add(foreign).ok());
  auto early = a.take();
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.error().message.find("incomplete"), std::string::npos);
  auto bad_shape = frames[1];
  bad_shape.slices[0].shape = {3, 999};
  EXPECT_FALSE(a.add(bad_shape).ok());
  for (size_t i = 1; i < frames.size(); ++i)
    ASSERT_TRUE(a.add(frames[i]).ok());
  EXPECT_TRUE(a.take().ok());
}

TEST(Frames, NoTensorsIsOneEmptyFrame) {
  auto frames = split_tensors({}, TensorFrame{}, 4096);
  ASSERT_EQ(frames.size(), 1u);
  FrameAssembler a;
  ASSERT_TRUE(a.add(frames[0]).ok());
  auto out = a.take();
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->empty());
}

TEST(Codec, FlatFrameIsAViewIntoTheBytesAndAnOrdinaryEnvelope) {
  std::vector<float> data = {1.5f, -2.f, 3.25f, 0.f, 7.f};
  TensorFrame h;
  h.kind = TensorKind::gradients;
  h.version = 4;
  h.step = 9;
  h.task_id = 11;
  h.frame_index = 1;
  h.frame_count = 3;
  h.total_bytes = 100 * sizeof(float);
  h.micro_batch = 6;
  auto bytes = encode_flat_frame("sat-2", "job-1", h, "gradients", 100, 20, data.data() + 1, 3);
  auto v = decode_flat_frame(bytes.data(), bytes.size());
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->sender, "sat-2");
  EXPECT_EQ(v->job_id, "job-1");
  EXPECT_EQ(v->header.task_id, 11u);
  EXPECT_EQ(v->header.frame_index, 1u);
  EXPECT_EQ(v->header.micro_batch, 6u);
  EXPECT_EQ(v->total_floats, 100u);
  EXPECT_EQ(v->offset_floats, 20u);
  ASSERT_EQ(v->count, 3u);
  EXPECT_GE(reinterpret_cast<const uint8_t*>(v->data), bytes.data());
  EXPECT_LT(reinterpret_cast<const uint8_t*>(v->data), bytes.data() + bytes.size());
  EXPECT_EQ(std::vector<float>(v->data, v->data + 3),
            std::vector<float>(data.begin() + 1, data.begin() + 4));
  // The same bytes through the general decoder.
  auto e = decode(bytes);
  ASSERT_TRUE(e.ok()) << e.error().message;
  const auto& f = std::get<TensorFrame>(e->body);
  ASSERT_EQ(f.slices.size(), 1u);
  EXPECT_EQ(f.micro_batch, 6u);
  EXPECT_EQ(f.slices[0].offset_bytes, 80u);
  EXPECT_EQ(f.slices[0].data.size(), 12u);
}

TEST(Codec, FlatFrameOfAlignedFloatsDecodesTheSame) {
  // Word-aligned floats, an even count: they travel as a segment of their
  // own (copied once, into the output), and decode exactly as the others.
  std::vector<float> data(1 << 16);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = float(i) * 0.5f - 7.f;
  ASSERT_EQ(reinterpret_cast<uintptr_t>(data.data()) % 8, 0u);
  TensorFrame h;
  h.kind = TensorKind::parameters;
  h.version = 2;
  const size_t n = data.size() - 2;
  auto bytes =
      encode_flat_frame("sat-1", "job-9", h, "parameters", data.size(), 2, data.data() + 2, n);
  EXPECT_GE(bytes.size(), n * sizeof(float));
  EXPECT_LT(bytes.size(), n * sizeof(float) + 1024);
  auto v = decode_flat_frame(bytes.data(), bytes.size());
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->offset_floats, 2u);
  ASSERT_EQ(v->count, n);
  EXPECT_EQ(0, std::memcmp(v->data, data.data() + 2, n * sizeof(float)));
  EXPECT_GE(reinterpret_cast<const uint8_t*>(v->data), bytes.data());
  EXPECT_LE(reinterpret_cast<const uint8_t*>(v->data + n), bytes.data() + bytes.size());
  auto e = decode(bytes);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(std::get<TensorFrame>(e->body).slices[0].data.size(), n * sizeof(float));
}

TEST(Codec, FlatFrameErrors) {
  float x[4] = {};
  TensorFrame h;
  // A slice beyond its tensor.
  auto beyond = encode_flat_frame("s", "j", h, "p", 4, 2, x, 3);
  auto b = decode_flat_frame(beyond.data(), beyond.size());
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("does not fit a tensor of 4 floats"), std::string::npos)
      << b.error().message;
  // Another kind of message.
  auto other = encode(envelope(ProbeRequest{}));
  auto o = decode_flat_frame(other.data(), other.size());
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().code, orbitrain::Errc::invalid_argument);
  // Truncated and unaligned input are errors, not crashes.
  auto good = encode_flat_frame("s", "j", h, "p", 4, 0, x, 4);
  EXPECT_FALSE(decode_flat_frame(good.data(), good.size() - 8).ok());
  std::vector<uint8_t> shifted(good.size() + 1);
  std::memcpy(shifted.data() + 1, good.data(), good.size());
  EXPECT_FALSE(decode_flat_frame(shifted.data() + 1, good.size()).ok());
}
