/**
 * Preloaded with `node --import` into every process the benchmark harness starts
 * (servers and load generators): when the process that started it dies (its parent
 * pid changes because it was re-parented), this process exits too, so a killed or
 * crashed runner never leaves a server or thousands of sockets behind. Plain
 * JavaScript so that it loads into the compiled Shoal server without tsx.
 */
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.exit(1)
}, 500).unref()
