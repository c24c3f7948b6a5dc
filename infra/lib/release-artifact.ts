// Where `scripts/release` writes the function's zip, so the app deploys the
// artifact that was tested rather than whatever a build left behind.

import * as fs from "fs";
import * as path from "path";

/** The version in the repository's Cargo.toml (`[package] version`). */
export function crateVersion(repoRoot: string): string {
  const manifest = fs.readFileSync(path.join(repoRoot, "Cargo.toml"), "utf8");
  const version = /^version\s*=\s*"([^"]+)"/m.exec(manifest);
  if (!version) {
    throw new Error(`no version in ${path.join(repoRoot, "Cargo.toml")}`);
  }
  return version[1];
}

/** `target/release-artifacts/alert-responder-<version>-arm64.zip` under `repoRoot`. */
export function releaseZip(repoRoot: string): string {
  return path.join(repoRoot, "target", "release-artifacts", `alert-responder-${crateVersion(repoRoot)}-arm64.zip`);
}
