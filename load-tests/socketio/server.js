// A plain Socket.IO fan-out server, the baseline `c360-load --mode fanout` is compared with:
// clients join one room each; a `publish` from the driver is emitted to its room as it is, with
// no recompute. Started by bench.js, which measures its CPU time; not part of the product.
'use strict';
const { createServer } = require('node:http');
const { Server } = require('socket.io');

const port = Number(process.env.PORT || 8370);
const http = createServer();
// WebSocket only, no compression: what customer360's sessions get.
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    socket.join(String(room));
    if (typeof ack === 'function') ack('ok');
  });
  socket.on('publish', (message) => {
    io.to(String(message.room)).emit('delta', message);
  });
});

http.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${port}\n`);
});
