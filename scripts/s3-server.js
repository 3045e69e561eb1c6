#!/usr/bin/env node
// The S3-compatible test server: s3rver (npm) on loopback, plus the two multipart calls
// s3rver 3.7 lacks, done on s3rver's own upload folder so they see exactly its state:
//   AbortMultipartUpload   DELETE /BUCKET/KEY?uploadId=ID   (s3rver answers 405)
//   ListMultipartUploads   GET    /BUCKET?uploads[&prefix=P] (s3rver answers 501)
// Everything else (signatures V4, PUT/GET/HEAD/DELETE, ListObjectsV2, create/upload part/
// complete) is s3rver's own. Test use only: the two added calls do not check signatures.
//
//   node s3-server.js --module DIR/node_modules/s3rver --address 127.0.0.1 --port 19000 \
//        --directory DATA --bucket NAME
'use strict';

const fs = require('fs');
const path = require('path');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) {
    console.error(`s3-server: --${name} is required`);
    process.exit(2);
  }
  return fallback;
}

const S3rver = require(path.resolve(arg('module')));
const address = arg('address', '127.0.0.1');
const port = Number(arg('port', '19000'));
const directory = path.resolve(arg('directory'));
const bucket = arg('bucket');

// s3rver keeps multipart uploads in <directory>/<bucket>/._S3rver_uploads/<uploadId>/ with
// a file "key" (the object key) and the parts "1", "2", ...
const uploadsDir = b => path.join(directory, b, '._S3rver_uploads');

const xmlEscape = s =>
  String(s).replace(/[<>&'"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);

function sendError(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;
}

async function multipartExtras(ctx, next) {
  const url = new URL(ctx.url, 'http://x');
  const parts = url.pathname.split('/').filter(p => p.length > 0);
  const b = decodeURIComponent(parts[0] || '');
  if (ctx.method === 'DELETE' && parts.length >= 2 && url.searchParams.has('uploadId')) {
    const id = url.searchParams.get('uploadId');
    const dir = path.join(uploadsDir(b), path.basename(id));
    if (!/^[0-9a-f]+$/.test(id) || !fs.existsSync(dir)) {
      return sendError(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    }
    fs.rmSync(dir, { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  if (ctx.method === 'GET' && parts.length === 1 && url.searchParams.has('uploads')) {
    if (!fs.existsSync(path.join(directory, b))) {
      return sendError(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
    }
    const prefix = url.searchParams.get('prefix') || '';
    const uploads = [];
    const root = uploadsDir(b);
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) {
      const keyFile = path.join(root, id, 'key');
      if (!fs.existsSync(keyFile)) continue;
      const key = fs.readFileSync(keyFile, 'utf8');
      if (!key.startsWith(prefix)) continue;
      uploads.push({ key, id, initiated: fs.statSync(keyFile).mtime });
    }
    uploads.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.id < y.id ? -1 : 1));
    ctx.status = 200;
    ctx.type = 'application/xml';
    ctx.body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Bucket>${xmlEscape(b)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>` +
      `<Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>10000</MaxUploads><IsTruncated>false</IsTruncated>` +
      uploads
        .map(
          u =>
            `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.id}</UploadId>` +
            `<Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
        )
        .join('') +
      '</ListMultipartUploadsResult>';
    return;
  }
  await next();
}

const server = new S3rver({
  address,
  port,
  directory,
  silent: true,
  configureBuckets: [{ name: bucket }],
});
// Koa composes its middleware when it starts listening: ours goes first.
server.middleware.unshift(multipartExtras);
server.run().then(
  addr => console.log(`s3rver listening on http://${addr.address}:${addr.port} (bucket ${bucket}, data ${directory})`),
  err => {
    console.error(`s3-server: ${err.message}`);
    process.exit(1);
  },
);
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close().then(() => process.exit(0)));
}
