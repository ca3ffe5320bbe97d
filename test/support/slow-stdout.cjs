// Preloaded into a child process (`node --require`): writes to fd 1 (stdout) complete 150 ms after
// they are made, like a slow terminal. A process that exits with such a write in flight loses the
// line, and a line written synchronously at exit overtakes it: what a user saw on Ctrl-C.
'use strict';
const fs = require('node:fs');

const write = fs.write;
fs.write = function slowStdoutWrite(fd, ...args) {
  if (fd !== 1) return write.call(fs, fd, ...args);
  setTimeout(() => write.call(fs, fd, ...args), 150);
};
