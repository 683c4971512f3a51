/**
 * Root hooks of the unit run. mocha runs it without `exit`, so the process ends only once nothing is
 * left running; a timer, socket or server a test leaves behind would hold it open. Once the last
 * test is done this names what still keeps the process alive and fails the run instead of hanging.
 */
const GRACE_MS = 5000;

export const mochaHooks = {
  afterAll(): void {
    setTimeout(() => {
      const alive = process.getActiveResourcesInfo().join(", ");
      console.error(`unit tests: ${alive} still running ${GRACE_MS / 1000} s after the last test; a test leaks a timer, socket, server or child process`);
      // mocha sets the exit code to the number of failed tests in its own exit listener; this one runs after it.
      process.on("exit", () => (process.exitCode = 1));
      process.exit(1);
    }, GRACE_MS).unref();
  },
};
