// Run by scripts/release after it built the zip (not by `npm test`, which
// runs before any release build): the app deploys that very zip.

import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { App, Stack } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { AlertResponder } from "../lib/alert-responder";
import { releaseZip } from "../lib/release-artifact";

const repoRoot = path.resolve(__dirname, "../../..");
const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

test("the zip scripts/release wrote is where the app looks for it", () => {
  const built = process.env.ALERT_RESPONDER_RELEASE_ZIP;
  assert.ok(built, "ALERT_RESPONDER_RELEASE_ZIP names the zip scripts/release built");
  assert.equal(path.resolve(built), releaseZip(repoRoot));
  assert.ok(fs.existsSync(releaseZip(repoRoot)), `${releaseZip(repoRoot)} exists`);
  const recorded = fs.readFileSync(`${releaseZip(repoRoot)}.sha256`, "utf8").split(/\s+/)[0];
  assert.equal(recorded, sha256(releaseZip(repoRoot)), "the .sha256 beside it matches");
});

test("the synthesized function's asset is the release zip, byte for byte", () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "alert-responder-release-"));
  try {
    const app = new App({ outdir });
    const stack = new Stack(app, "Release", { env: { account: "123456789012", region: "us-east-1" } });
    new AlertResponder(stack, "Responder", {
      alertingTopicArn: "arn:aws:sns:us-east-1:123456789012:matano-alerting",
      code: lambda.Code.fromAsset(releaseZip(repoRoot)),
    });
    const assembly = app.synth();
    const template = JSON.parse(fs.readFileSync(path.join(assembly.directory, "Release.template.json"), "utf8"));
    const functions = Object.values(template.Resources as Record<string, { Type: string; Properties: { Code?: { S3Key?: string } } }>)
      .filter((r) => r.Type === "AWS::Lambda::Function" && r.Properties.Code?.S3Key);
    assert.equal(functions.length, 1, "one function with code from an asset");
    const key = functions[0].Properties.Code!.S3Key!;
    const staged = fs.readdirSync(assembly.directory).filter((f) => f.startsWith("asset.") && f.endsWith(".zip"));
    assert.equal(staged.length, 1, `one zip asset staged: ${staged.join(", ")}`);
    assert.ok(key.includes(staged[0].slice("asset.".length, -".zip".length)), `${key} is the staged zip's`);
    assert.equal(sha256(path.join(assembly.directory, staged[0])), sha256(releaseZip(repoRoot)));
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
});
