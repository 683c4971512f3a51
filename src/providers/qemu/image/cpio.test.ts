import assert from "node:assert/strict";
import { writeCpio } from "./cpio.js";

interface Member {
  name: string;
  mode: number;
  nlink: number;
  rdev: [number, number];
  data: Buffer;
  offset: number;
}

/** Reads a newc archive field by field, checking the 4-byte alignment the kernel relies on. */
function readCpio(archive: Buffer): Member[] {
  const members: Member[] = [];
  let offset = 0;
  for (;;) {
    assert.equal(offset % 4, 0, "member starts 4-byte aligned");
    assert.equal(archive.toString("ascii", offset, offset + 6), "070701");
    const field = (i: number): number => parseInt(archive.toString("ascii", offset + 6 + i * 8, offset + 14 + i * 8), 16);
    const nameSize = field(11);
    const fileSize = field(6);
    const nameStart = offset + 110;
    const name = archive.toString("utf8", nameStart, nameStart + nameSize - 1);
    assert.equal(archive[nameStart + nameSize - 1], 0, "name is NUL-terminated");
    const dataStart = Math.ceil((nameStart + nameSize) / 4) * 4;
    members.push({ name, mode: field(1), nlink: field(4), rdev: [field(9), field(10)], data: archive.subarray(dataStart, dataStart + fileSize), offset });
    offset = Math.ceil((dataStart + fileSize) / 4) * 4;
    if (name === "TRAILER!!!") break;
  }
  assert.equal(offset, archive.length, "nothing after the trailer");
  return members;
}

describe("writeCpio", () => {
  it("writes files, links, devices and the trailer in newc format", () => {
    const members = readCpio(
      writeCpio([
        { type: "file", path: "/init", data: "#!/bin/sh\n", mode: 0o755 },
        { type: "symlink", path: "bin/sh", target: "busybox" },
        { type: "char", path: "dev/console", major: 5, minor: 1 },
        { type: "dir", path: "proc" },
      ]),
    );
    assert.deepEqual(
      members.map((m) => [m.name, m.mode.toString(8)]),
      [
        ["init", "100755"],
        ["bin", "40755"],
        ["bin/sh", "120777"],
        ["dev", "40755"],
        ["dev/console", "20600"],
        ["proc", "40755"],
        ["TRAILER!!!", "0"],
      ],
    );
    assert.equal(members[0]!.data.toString(), "#!/bin/sh\n");
    assert.equal(members[2]!.data.toString(), "busybox");
    assert.deepEqual(members[4]!.rdev, [5, 1]);
    assert.equal(members[1]!.nlink, 2);
  });

  it("pads names and data of every length to 4 bytes", () => {
    for (let length = 0; length < 9; length++) {
      const name = "f".repeat(length + 1);
      const data = Buffer.alloc(length, 0x61);
      const [file] = readCpio(writeCpio([{ type: "file", path: name, data }]));
      assert.equal(file!.name, name);
      assert.deepEqual(file!.data, data);
    }
  });

  it("adds each missing parent directory once, before its first child", () => {
    const names = readCpio(
      writeCpio([
        { type: "file", path: "lib/modules/a.ko", data: "a" },
        { type: "file", path: "lib/modules/b.ko", data: "b" },
      ]),
    ).map((m) => m.name);
    assert.deepEqual(names, ["lib", "lib/modules", "lib/modules/a.ko", "lib/modules/b.ko", "TRAILER!!!"]);
  });

  it("gives the same bytes for the same entries", () => {
    const entries = [{ type: "file" as const, path: "x", data: "1" }];
    assert.deepEqual(writeCpio(entries), writeCpio(entries));
  });

  it("rejects duplicates and paths outside the root", () => {
    assert.throws(() => writeCpio([{ type: "dir", path: "a" }, { type: "dir", path: "/a/" }]), /duplicate cpio entry "a"/);
    assert.throws(() => writeCpio([{ type: "dir", path: "../etc" }]), /invalid cpio path/);
    assert.throws(() => writeCpio([{ type: "dir", path: "/" }]), /invalid cpio path/);
  });
});
