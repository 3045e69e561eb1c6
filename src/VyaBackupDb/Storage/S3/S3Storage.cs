using System.Net;
using System.Runtime.CompilerServices;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using VyaBackupDb.Config;

namespace VyaBackupDb.Storage.S3;

/// <summary>
/// An S3-compatible bucket (AWS, MinIO, Ceph, Garage, s3rver...). A write is a streaming multipart
/// upload with one part buffered at a time (fixed part size, flat memory), each part sent with its
/// Content-MD5 so the server rejects a part damaged on the way; the object appears only when the
/// upload is completed on commit. A write shorter than one part is a single PutObject on commit.
/// Disposing without commit aborts the upload; uploads of killed runs are aborted by
/// <see cref="SweepAbandonedAsync"/>.
/// </summary>
public sealed class S3Storage : IStorage, IDisposable
{
    private readonly Lazy<IAmazonS3> _lazyClient;
    private readonly string _bucket;
    private readonly string _prefix;

    /// <summary>Credentials are read on first use, so a missing one fails only what needs this storage.</summary>
    public S3Storage(S3StorageConfig config)
        : this(new Lazy<IAmazonS3>(() => CreateClient(config)), config.Bucket, config.Prefix, config.PartSizeBytes)
    {
    }

    internal S3Storage(Lazy<IAmazonS3> client, string bucket, string prefix, int partSizeBytes)
    {
        _lazyClient = client;
        _bucket = bucket;
        _prefix = StorageKey.Folder(prefix);
        PartSize = partSizeBytes;
    }

    /// <summary>Bytes per multipart part (the most one write holds in memory).</summary>
    public int PartSize { get; }

    public string Bucket => _bucket;

    /// <summary>The key prefix in the bucket: "" or a folder ending in '/'.</summary>
    public string Prefix => _prefix;

    public static IAmazonS3 CreateClient(S3StorageConfig config)
    {
        var s3Config = new AmazonS3Config
        {
            ForcePathStyle = config.ForcePathStyle,
            // Only the checksums we send ourselves (Content-MD5 per part): the SDK's default trailing
            // CRC (aws-chunked) is not understood by every S3-compatible server.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            Timeout = TimeSpan.FromMinutes(5),
            MaxErrorRetry = 4,
        };
        if (config.Endpoint is { } endpoint)
        {
            s3Config.ServiceURL = endpoint;
            s3Config.AuthenticationRegion = config.Region;
        }
        else
        {
            s3Config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(config.Region);
        }
        var accessKey = config.AccessKeyId.Resolve()
            ?? throw new Errors.ConfigException($"storage '{config.Name}': no access key id");
        var secretKey = config.SecretAccessKey.Resolve()
            ?? throw new Errors.ConfigException($"storage '{config.Name}': no secret access key");
        return new AmazonS3Client(new BasicAWSCredentials(accessKey, secretKey), s3Config);
    }

    public string Describe(string key) => $"s3://{_bucket}/{ObjectKey(key)}";

    private string ObjectKey(string key) => _prefix + StorageKey.Validate(key);

    private string KeyOf(string objectKey) => objectKey[_prefix.Length..];

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
    {
        var objectKey = ObjectKey(key);
        var response = await CallAsync("read", key, () => Client.GetObjectAsync(_bucket, objectKey, cancellationToken), missingIsNotFound: true)
            .ConfigureAwait(false);
        return new ResponseStream(response);
    }

    public async Task<StorageEntry?> StatAsync(string key, CancellationToken cancellationToken)
    {
        var objectKey = ObjectKey(key);
        try
        {
            var metadata = await CallAsync("stat", key,
                () => Client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = _bucket, Key = objectKey }, cancellationToken),
                missingIsNotFound: true).ConfigureAwait(false);
            return new StorageEntry(key, metadata.ContentLength, metadata.LastModified ?? DateTimeOffset.MinValue.UtcDateTime);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    public async IAsyncEnumerable<StorageEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var folder = _prefix + StorageKey.Folder(prefix);
        var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = folder.Length == 0 ? null : folder };
        while (true)
        {
            var response = await CallAsync("list", prefix, () => Client.ListObjectsV2Async(request, cancellationToken)).ConfigureAwait(false);
            foreach (var entry in response.S3Objects ?? [])
            {
                // Folder markers ("x/") some tools create are not objects of ours.
                if (entry.Key.StartsWith(folder, StringComparison.Ordinal) && !entry.Key.EndsWith('/'))
                {
                    yield return new StorageEntry(KeyOf(entry.Key), entry.Size ?? 0, entry.LastModified ?? DateTime.MinValue);
                }
            }
            if (response.IsTruncated != true || string.IsNullOrEmpty(response.NextContinuationToken))
            {
                yield break;
            }
            request.ContinuationToken = response.NextContinuationToken;
        }
    }

    public Task<IStorageWrite> CreateAsync(string key, CancellationToken cancellationToken) =>
        Task.FromResult<IStorageWrite>(new S3Write(this, key));

    public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        var objectKey = ObjectKey(key);
        return CallAsync("delete", key, () => Client.DeleteObjectAsync(_bucket, objectKey, cancellationToken));
    }

    /// <summary>Aborts multipart uploads under the folder started before <paramref name="olderThan"/>.</summary>
    /// <remarks>A server that cannot list uploads (501) has nothing swept; one aborted meanwhile (404) is skipped.</remarks>
    public async Task<int> SweepAbandonedAsync(string prefix, DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        IReadOnlyList<MultipartUpload> uploads;
        try
        {
            uploads = await ListUploadsAsync(prefix, cancellationToken).ConfigureAwait(false);
        }
        catch (StorageException e) when (e.InnerException is AmazonS3Exception { StatusCode: HttpStatusCode.NotImplemented })
        {
            return 0;
        }
        var removed = 0;
        foreach (var upload in uploads)
        {
            if (upload.Initiated is { } initiated && initiated.ToUniversalTime() < olderThan.UtcDateTime)
            {
                try
                {
                    await CallAsync("abort an upload of", KeyOf(upload.Key),
                        () => Client.AbortMultipartUploadAsync(_bucket, upload.Key, upload.UploadId, cancellationToken)).ConfigureAwait(false);
                    removed++;
                }
                catch (StorageException e) when (e.InnerException is AmazonS3Exception { StatusCode: HttpStatusCode.NotFound })
                {
                }
            }
        }
        return removed;
    }

    /// <summary>Multipart uploads in progress (started, neither completed nor aborted) under a folder.</summary>
    public async Task<IReadOnlyList<MultipartUpload>> ListUploadsAsync(string prefix, CancellationToken cancellationToken)
    {
        var folder = _prefix + StorageKey.Folder(prefix);
        var request = new ListMultipartUploadsRequest { BucketName = _bucket, Prefix = folder.Length == 0 ? null : folder };
        var uploads = new List<MultipartUpload>();
        while (true)
        {
            var response = await CallAsync("list uploads in", prefix, () => Client.ListMultipartUploadsAsync(request, cancellationToken))
                .ConfigureAwait(false);
            uploads.AddRange((response.MultipartUploads ?? []).Where(u => u.Key.StartsWith(folder, StringComparison.Ordinal)));
            if (response.IsTruncated != true)
            {
                return uploads;
            }
            request.KeyMarker = response.NextKeyMarker;
            request.UploadIdMarker = response.NextUploadIdMarker;
        }
    }

    /// <summary>Runs one S3 call, turning its failures into <see cref="StorageException"/> (or <see cref="FileNotFoundException"/>).</summary>
    private async Task<T> CallAsync<T>(string what, string key, Func<Task<T>> call, bool missingIsNotFound = false)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (missingIsNotFound && e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new FileNotFoundException($"{Describe(key)} does not exist", Describe(key), e);
        }
        catch (AmazonServiceException e)
        {
            var code = string.IsNullOrEmpty(e.ErrorCode) ? $"HTTP {(int)e.StatusCode}" : e.ErrorCode;
            throw new StorageException($"S3 {what} {DescribeSafe(key)} failed: {FirstLine(e.Message)} ({code})", e);
        }
        catch (AmazonClientException e)
        {
            throw new StorageException($"S3 {what} {DescribeSafe(key)} failed: {FirstLine(e.Message)}", e);
        }
        catch (HttpRequestException e)
        {
            throw new StorageException($"S3 {what} {DescribeSafe(key)} failed: {FirstLine(e.Message)}", e);
        }
    }

    private string DescribeSafe(string key) => key.Length == 0 ? $"s3://{_bucket}/{_prefix}" : $"s3://{_bucket}/{_prefix}{key}";

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    private IAmazonS3 Client => _lazyClient.Value;

    public void Dispose()
    {
        if (_lazyClient.IsValueCreated)
        {
            _lazyClient.Value.Dispose();
        }
    }

    /// <summary>A GetObject body; disposing it releases the response (and its connection).</summary>
    private sealed class ResponseStream(GetObjectResponse response) : Pipeline.WrapperStream(response.ResponseStream)
    {
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                response.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>
    /// One write. Bytes fill a part buffer; a full buffer is sent as the next part (the multipart
    /// upload is started with the first one). Commit sends what is left and completes the upload.
    /// </summary>
    public sealed class S3Write : IStorageWrite
    {
        private readonly S3Storage _storage;
        private readonly string _key;
        private readonly string _objectKey;
        private readonly List<PartETag> _parts = [];
        private readonly PartStream _content;
        private byte[] _buffer = new byte[64 * 1024];
        private int _length;
        private string? _uploadId;
        private bool _done;

        internal S3Write(S3Storage storage, string key)
        {
            _storage = storage;
            _key = key;
            _objectKey = storage.ObjectKey(key);
            _content = new PartStream(this);
        }

        public Stream Content => _content;

        /// <summary>Parts sent so far (0 while the write still fits in one buffer).</summary>
        public int PartsUploaded => _parts.Count;

        /// <summary>The multipart upload's id, once started.</summary>
        public string? UploadId => _uploadId;

        public async Task CommitAsync(CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_done, this);
            if (await _storage.StatAsync(_key, cancellationToken).ConfigureAwait(false) is not null)
            {
                throw new StorageException($"{_storage.Describe(_key)} already exists; not overwritten");
            }
            if (_uploadId is null)
            {
                using var body = new MemoryStream(_buffer, 0, _length, writable: false);
                var put = new PutObjectRequest
                {
                    BucketName = _storage._bucket,
                    Key = _objectKey,
                    InputStream = body,
                    AutoCloseStream = false,
                    MD5Digest = Md5(_buffer.AsSpan(0, _length)),
                    UseChunkEncoding = false,
                };
                await _storage.CallAsync("write", _key, () => _storage.Client.PutObjectAsync(put, cancellationToken)).ConfigureAwait(false);
            }
            else
            {
                if (_length > 0)
                {
                    await SendPartAsync(cancellationToken).ConfigureAwait(false);
                }
                var complete = new CompleteMultipartUploadRequest
                {
                    BucketName = _storage._bucket,
                    Key = _objectKey,
                    UploadId = _uploadId,
                    PartETags = _parts,
                };
                await _storage.CallAsync("complete the upload of", _key,
                    () => _storage.Client.CompleteMultipartUploadAsync(complete, cancellationToken)).ConfigureAwait(false);
            }
            _done = true;
            _buffer = [];
        }

        public async ValueTask DisposeAsync()
        {
            if (_done)
            {
                return;
            }
            _done = true;
            _buffer = [];
            if (_uploadId is not null)
            {
                // Best effort: if the abort fails (network gone), the upload stays invisible and the
                // next run's sweep aborts it.
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await _storage.Client.AbortMultipartUploadAsync(_storage._bucket, _objectKey, _uploadId, timeout.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException or OperationCanceledException)
                {
                }
            }
        }

        private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            while (!data.IsEmpty)
            {
                if (MakeRoom())
                {
                    await SendPartAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                data = data[Append(data.Span)..];
            }
        }

        /// <summary>The same for synchronous writers (a codec's Dispose): blocks while a part is sent.</summary>
        private void Write(ReadOnlySpan<byte> data)
        {
            while (!data.IsEmpty)
            {
                if (MakeRoom())
                {
                    SendPartAsync(CancellationToken.None).GetAwaiter().GetResult();
                    continue;
                }
                data = data[Append(data)..];
            }
        }

        /// <summary>Grows the buffer up to one part; true when it is a full part that must be sent first.</summary>
        private bool MakeRoom()
        {
            ObjectDisposedException.ThrowIf(_done, this);
            if (_length < _buffer.Length)
            {
                return false;
            }
            if (_length == _storage.PartSize)
            {
                return true;
            }
            Array.Resize(ref _buffer, Math.Min(_storage.PartSize, _buffer.Length * 2));
            return false;
        }

        private int Append(ReadOnlySpan<byte> data)
        {
            var n = Math.Min(data.Length, _buffer.Length - _length);
            data[..n].CopyTo(_buffer.AsSpan(_length));
            _length += n;
            return n;
        }

        private async Task SendPartAsync(CancellationToken cancellationToken)
        {
            if (_uploadId is null)
            {
                var initiate = new InitiateMultipartUploadRequest { BucketName = _storage._bucket, Key = _objectKey };
                var started = await _storage.CallAsync("start an upload of", _key,
                    () => _storage.Client.InitiateMultipartUploadAsync(initiate, cancellationToken)).ConfigureAwait(false);
                _uploadId = started.UploadId;
            }
            var number = _parts.Count + 1;
            using var body = new MemoryStream(_buffer, 0, _length, writable: false);
            var part = new UploadPartRequest
            {
                BucketName = _storage._bucket,
                Key = _objectKey,
                UploadId = _uploadId,
                PartNumber = number,
                PartSize = _length,
                InputStream = body,
                MD5Digest = Md5(_buffer.AsSpan(0, _length)),
                UseChunkEncoding = false,
            };
            var response = await _storage.CallAsync($"upload part {number} of", _key, () => _storage.Client.UploadPartAsync(part, cancellationToken))
                .ConfigureAwait(false);
            _parts.Add(new PartETag { PartNumber = number, ETag = response.ETag });
            _length = 0;
        }

        private static string Md5(ReadOnlySpan<byte> data) =>
#pragma warning disable CA5351 // MD5 is what Content-MD5 is: an integrity check of the part in transit, not security.
            Convert.ToBase64String(System.Security.Cryptography.MD5.HashData(data));
#pragma warning restore CA5351

        /// <summary>The write side the backup chain sees: write-only, not seekable.</summary>
        private sealed class PartStream(S3Write owner) : Stream
        {
            public override bool CanRead => false;
            public override bool CanSeek => false;
            public override bool CanWrite => true;
            public override long Length => throw new NotSupportedException();

            public override long Position
            {
                get => throw new NotSupportedException();
                set => throw new NotSupportedException();
            }

            public override void Flush()
            {
            }

            public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

            public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

            public override void SetLength(long value) => throw new NotSupportedException();

            public override void Write(byte[] buffer, int offset, int count) => owner.Write(buffer.AsSpan(offset, count));

            public override void Write(ReadOnlySpan<byte> buffer) => owner.Write(buffer);

            public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
                owner.WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

            public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
                owner.WriteAsync(buffer, cancellationToken);
        }
    }
}
