// FolderPaths against ComfyUI's documented layout (folder_paths.py, extra_model_paths.yaml
// example) and the confinement rules of folder_paths.h.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "workflow/folder_paths.h"

namespace fs = std::filesystem;
using darkroom::workflow::FolderPaths;
using darkroom::workflow::resolve_inside;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("darkroom-fp-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

}  // namespace

TEST(FolderPaths, UnderCreatesComfyLayout) {
  TempDir t;
  FolderPaths f = FolderPaths::under(t.path.string());
  EXPECT_EQ(f.output_directory, (t.path / "output").string());
  EXPECT_EQ(f.input_directory, (t.path / "input").string());
  EXPECT_EQ(f.temp_directory, (t.path / "temp").string());
  EXPECT_EQ(f.user_directory, (t.path / "user").string());
  for (const char* d : {"output", "input", "temp", "user", "models/checkpoints", "models/loras",
                        "models/vae", "models/embeddings", "models/upscale_models"})
    EXPECT_TRUE(fs::is_directory(t.path / d)) << d;
  EXPECT_EQ(f.model_folders.at("checkpoints").front(), (t.path / "models/checkpoints").string());
  // ComfyUI keeps models/clip and models/unet as second directories of the new names.
  EXPECT_EQ(f.model_folders.at("text_encoders").at(1), (t.path / "models/clip").string());
  EXPECT_EQ(f.model_folders.at("diffusion_models").at(0), (t.path / "models/unet").string());
  EXPECT_EQ(*f.directory_for_type("output"), f.output_directory);
  EXPECT_EQ(*f.directory_for_type("input"), f.input_directory);
  EXPECT_EQ(*f.directory_for_type("temp"), f.temp_directory);
  EXPECT_FALSE(f.directory_for_type("models").has_value());
}

TEST(FolderPaths, ListFiltersExtensionsSortsAndUsesSlashes) {
  TempDir t;
  FolderPaths f = FolderPaths::under(t.path.string());
  const fs::path ck = t.path / "models/checkpoints";
  touch(ck / "b.safetensors");
  touch(ck / "a.ckpt");
  touch(ck / "sub/c.pth");
  touch(ck / "notes.txt");
  touch(ck / "upper.SAFETENSORS");
  std::vector<std::string> want = {"a.ckpt", "b.safetensors", "sub/c.pth", "upper.SAFETENSORS"};
  EXPECT_EQ(f.list("checkpoints"), want);
  EXPECT_TRUE(f.list("no_such_folder").empty());
  // Legacy name "clip" reads text_encoders (both directories).
  touch(t.path / "models/clip/clip_l.safetensors");
  touch(t.path / "models/text_encoders/t5.safetensors");
  std::vector<std::string> te = {"clip_l.safetensors", "t5.safetensors"};
  EXPECT_EQ(f.list("clip"), te);
  EXPECT_EQ(f.list("text_encoders"), te);
}

TEST(FolderPaths, FindResolvesInsideAndRefusesEscapes) {
  TempDir t;
  FolderPaths f = FolderPaths::under(t.path.string());
  touch(t.path / "models/checkpoints/sub/m.safetensors");
  touch(t.path / "secret.safetensors");
  auto p = f.find("checkpoints", "sub/m.safetensors");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, fs::canonical(t.path / "models/checkpoints/sub/m.safetensors").string());
  EXPECT_FALSE(f.find("checkpoints", "missing.safetensors"));
  EXPECT_FALSE(f.find("checkpoints", "../../secret.safetensors"));
  EXPECT_FALSE(f.find("checkpoints", (t.path / "secret.safetensors").string()));
  // A symlink inside the folder whose target is outside it.
  fs::create_symlink(t.path / "secret.safetensors", t.path / "models/checkpoints/link.safetensors");
  EXPECT_FALSE(f.find("checkpoints", "link.safetensors"));
  EXPECT_EQ(f.list("checkpoints"), std::vector<std::string>{"sub/m.safetensors"});
}

TEST(FolderPaths, ResolveInsideRules) {
  TempDir t;
  const std::string root = t.path.string();
  touch(t.path / "in/a.png");
  fs::create_directories(t.path / "outside");
  touch(t.path / "outside/b.png");
  const std::string real_root = fs::canonical(t.path / "in").string();
  EXPECT_EQ(*resolve_inside(root + "/in", "a.png"), real_root + "/a.png");
  EXPECT_EQ(*resolve_inside(root + "/in", "new/file.png"), real_root + "/new/file.png");
  EXPECT_FALSE(resolve_inside(root + "/in", "../outside/b.png"));
  EXPECT_FALSE(resolve_inside(root + "/in", "x/../../outside/b.png"));
  EXPECT_FALSE(resolve_inside(root + "/in", "..\\outside\\b.png"));
  EXPECT_FALSE(resolve_inside(root + "/in", "/etc/passwd"));
  EXPECT_FALSE(resolve_inside(root + "/in", std::string("a.png\0x", 7)));
  // A directory symlink escaping the root, used as a subfolder.
  fs::create_directory_symlink(t.path / "outside", t.path / "in/esc");
  EXPECT_FALSE(resolve_inside(root + "/in", "esc/b.png"));
  EXPECT_FALSE(resolve_inside(root + "/in", "esc/new.png"));
  // A prefix sibling ("in2") is not inside "in".
  touch(t.path / "in2/c.png");
  fs::create_symlink(t.path / "in2/c.png", t.path / "in/c.png");
  EXPECT_FALSE(resolve_inside(root + "/in", "c.png"));
  // ".." inside a name (not a component) is a normal file name.
  EXPECT_TRUE(resolve_inside(root + "/in", "a..png"));
}

TEST(FolderPaths, ExtraModelPathsYaml) {
  TempDir t;
  FolderPaths f = FolderPaths::under((t.path / "base").string());
  // ComfyUI's extra_model_paths.yaml.example layout: base_path plus one path per line;
  // a relative base_path is relative to the yaml file.
  const fs::path yaml = t.path / "extra.yaml";
  std::ofstream(yaml) << "a111:\n"
                         "    base_path: webui\n"
                         "    checkpoints: models/Stable-diffusion\n"
                         "    loras: |\n"
                         "         models/Lora\n"
                         "         models/LyCORIS\n"
                         "    clip: models/text\n"
                         "other:\n"
                         "    base_path: "
                      << (t.path / "shared").string()
                      << "\n"
                         "    is_default: true\n"
                         "    checkpoints: ckpts\n";
  f.add_extra_model_paths(yaml.string());
  const auto& ck = f.model_folders.at("checkpoints");
  ASSERT_EQ(ck.size(), 3u);
  EXPECT_EQ(ck[0], (t.path / "shared/ckpts").string());  // is_default goes first
  EXPECT_EQ(ck[1], (t.path / "base/models/checkpoints").string());
  EXPECT_EQ(ck[2], (t.path / "webui/models/Stable-diffusion").string());
  const auto& lo = f.model_folders.at("loras");
  ASSERT_EQ(lo.size(), 3u);
  EXPECT_EQ(lo[1], (t.path / "webui/models/Lora").string());
  EXPECT_EQ(lo[2], (t.path / "webui/models/LyCORIS").string());
  EXPECT_EQ(f.model_folders.at("text_encoders").back(), (t.path / "webui/models/text").string());
  touch(t.path / "webui/models/Stable-diffusion/x.safetensors");
  touch(t.path / "shared/ckpts/y.safetensors");
  std::vector<std::string> want = {"x.safetensors", "y.safetensors"};
  EXPECT_EQ(f.list("checkpoints"), want);
  EXPECT_TRUE(f.find("checkpoints", "x.safetensors").has_value());

  std::ofstream(t.path / "bad.yaml") << "a: [unclosed\n";
  EXPECT_THROW(f.add_extra_model_paths((t.path / "bad.yaml").string()), darkroom::Error);
  EXPECT_THROW(f.add_extra_model_paths((t.path / "missing.yaml").string()), darkroom::Error);
}
