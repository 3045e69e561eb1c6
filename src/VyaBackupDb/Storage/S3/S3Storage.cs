using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using VyaBackupDb.Config;

namespace VyaBackupDb.Storage.S3;

/// <summary>
/// An S3-compatible bucket (AWS, Ceph RGW, MinIO, Garage...). A write is a streaming multipart
/// upload with one part buffered at a time, each part sent with its Content-MD5 so the server
/// rejects a part damaged on the way; the object appears only when the upload is completed on
/// commit. A write shorter than one part is a single PutObject on commit. Parts start at the
/// configured size and grow with the upload (<see cref="NextPartSize"/>), so any object up to
/// S3's 5 TiB fits in its 10,000 parts while memory stays bounded by <see cref="MaxPartSize"/>.
/// Commit is a conditional create (If-None-Match: *): it never replaces an existing object, even
/// one written meanwhile by another run where the server honours the condition (AWS; Ceph 16 on
/// PutObject only; elsewhere the existence check just before is what there is). Disposing without commit aborts the upload;
/// uploads of killed runs are aborted by <see cref="SweepAbandonedAsync"/>.
/// </summary>
public sealed class S3Storage : IStorage, IDisposable
{
    /// <summary>S3's most parts in one multipart upload.</summary>
    public const int MaxParts = 10_000;

    /// <summary>The largest part sent, so the most one write holds in memory.</summary>
    public const int MaxPartSize = 1 << 30;

    private readonly Lazy<IAmazonS3> _lazyClient;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly TimeSpan _answerLimit = TimeSpan.FromSeconds(30);

    /// <summary>Credentials are read on first use, so a missing one fails only what needs this storage.</summary>
    /// <param name="answerLimit">How long a request may wait for its answer, or one sending data since the connection last took some (default 30 s).</param>
    public S3Storage(S3StorageConfig config, TimeSpan? answerLimit = null)
        : this(new Lazy<IAmazonS3>(() => CreateClient(config)), config.Bucket, config.Prefix, config.PartSizeBytes)
    {
        _answerLimit = answerLimit ?? _answerLimit;
    }

    /// <param name="maxParts">The part-count limit: S3's, or a small one in tests to show the parts growing.</param>
    internal S3Storage(Lazy<IAmazonS3> client, string bucket, string prefix, int partSizeBytes, int maxParts = MaxParts)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partSizeBytes, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(partSizeBytes, MaxPartSize);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxParts, 10);
        _lazyClient = client;
        _bucket = bucket;
        _prefix = StorageKey.Folder(prefix);
        PartSize = partSizeBytes;
        PartLimit = maxParts;
    }

    /// <summary>Bytes in the first parts of an upload.</summary>
    public int PartSize { get; }

    /// <summary>The most parts one upload may have.</summary>
    public int PartLimit { get; }

    /// <summary>
    /// The size of the next part: it doubles (up to <see cref="MaxPartSize"/>) each time the bytes
    /// sent reach a tenth of the part limit times the current size. With S3's 10,000 parts: 1,000
    /// parts of the configured size, then 500 of twice that, 500 of four times..., so a part is
    /// about 1/1000 to 1/500 of what was sent before it, and 10,000 parts hold more than 5 TiB
    /// for any starting size of 5 MiB or more.
    /// </summary>
    public static int NextPartSize(int current, long sent, int partLimit) =>
        sent >= (long)(partLimit / 10) * current && current < MaxPartSize ? (int)Math.Min(MaxPartSize, 2L * current) : current;

    public string Bucket => _bucket;

    /// <summary>The key prefix in the bucket: "" or a folder ending in '/'.</summary>
    public string Prefix => _prefix;

    public static IAmazonS3 CreateClient(S3StorageConfig config) => CreateClient(config, null);

    /// <param name="httpClientFactory">Tests put a fault between the client and the server here.</param>
    internal static IAmazonS3 CreateClient(S3StorageConfig config, HttpClientFactory? httpClientFactory)
    {
        var s3Config = new AmazonS3Config
        {
            ForcePathStyle = config.ForcePathStyle,
            // Only the checksums we send ourselves (Content-MD5 per part): the SDK's default trailing
            // CRC (aws-chunked) is refused by some S3-compatible servers (Ceph RGW 16: 411).
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            Timeout = TimeSpan.FromMinutes(5),
            MaxErrorRetry = 4,
        };
        if (httpClientFactory is not null)
        {
            s3Config.HttpClientFactory = httpClientFactory;
        }
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
        var response = await CallAsync("read", key, token => Client.GetObjectAsync(_bucket, objectKey, token), cancellationToken, missingIsNotFound: true)
            .ConfigureAwait(false);
        return new SilenceLimitStream(new ResponseStream(response), _answerLimit, $"S3 read {DescribeSafe(key)} failed", response.Dispose);
    }

    public async Task<StorageEntry?> StatAsync(string key, CancellationToken cancellationToken)
    {
        var objectKey = ObjectKey(key);
        try
        {
            var metadata = await CallAsync("stat", key,
                token => Client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = _bucket, Key = objectKey }, token), cancellationToken,
                missingIsNotFound: true).ConfigureAwait(false);
            return new StorageEntry(key, metadata.ContentLength, metadata.LastModified ?? DateTimeOffset.MinValue.UtcDateTime);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (StorageException e) when (e.InnerException is AmazonServiceException { StatusCode: HttpStatusCode.Forbidden, ErrorCode: null or "" or "Forbidden" })
        {
            // A refused HEAD has no body, so no reason: a one-byte GET is refused with one (a wrong secret, access denied...).
            using var response = await CallAsync("stat", key, token => Client.GetObjectAsync(
                new GetObjectRequest { BucketName = _bucket, Key = objectKey, ByteRange = new ByteRange(0, 0) }, token), cancellationToken).ConfigureAwait(false);
            throw;
        }
    }

    public IAsyncEnumerable<StorageEntry> ListAsync(string prefix, CancellationToken cancellationToken) =>
        ListObjectsAsync(_prefix + StorageKey.Folder(prefix), prefix, cancellationToken);

    /// <summary>Lists only the keys that start so (one request), not the whole folder.</summary>
    public async Task<bool> AnyKeyStartingWithAsync(string keyPrefix, CancellationToken cancellationToken)
    {
        await foreach (var _ in ListObjectsAsync(_prefix + keyPrefix, keyPrefix, cancellationToken).ConfigureAwait(false))
        {
            return true;
        }
        return false;
    }

    /// <param name="folder">The object keys' start: the prefix, then a folder with its '/' or the start of a key.</param>
    private async IAsyncEnumerable<StorageEntry> ListObjectsAsync(string folder, string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = folder.Length == 0 ? null : folder };
        while (true)
        {
            var response = await CallAsync("list", prefix, token => Client.ListObjectsV2Async(request, token), cancellationToken).ConfigureAwait(false);
            foreach (var entry in response.S3Objects ?? [])
            {
                // Folder markers ("x/") some tools create are not objects of ours.
                if (entry.Key.StartsWith(folder, StringComparison.Ordinal) && !entry.Key.EndsWith('/')
                    && StorageKey.IsListable(KeyOf(entry.Key), $"s3://{_bucket}/{_prefix}"))
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
        Task.FromResult<IStorageWrite>(new S3Write(this, key, cancellationToken));

    public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        var objectKey = ObjectKey(key);
        return CallAsync("delete", key, token => Client.DeleteObjectAsync(_bucket, objectKey, token), cancellationToken);
    }

    /// <summary>One PutObject with If-None-Match: * (honoured by AWS and by Ceph RGW 16 on PutObject): 412 means it exists.</summary>
    public async Task<bool> TryCreateExclusiveAsync(string key, byte[] content, CancellationToken cancellationToken)
    {
        using var body = new MemoryStream(content, writable: false);
        var put = new PutObjectRequest
        {
            BucketName = _bucket,
            Key = ObjectKey(key),
            InputStream = body,
            AutoCloseStream = false,
            MD5Digest = S3Write.Md5(content),
            UseChunkEncoding = false,
            IfNoneMatch = "*",
        };
        try
        {
            await CallAsync("create", key, token => Client.PutObjectAsync(put, token), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (StorageException e) when (e.InnerException is AmazonS3Exception { StatusCode: HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict })
        {
            return await HoldsExactlyAsync(key, content, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Whether the object holds exactly <paramref name="content"/>. Asked after a conditional create was refused:
    /// the SDK retries a request whose answer was lost, and the retry is refused because the first attempt
    /// created the object. Then it is this write's own, not another run's.
    /// </summary>
    private async Task<bool> HoldsExactlyAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await OpenReadAsync(key, cancellationToken).ConfigureAwait(false);
            var buffer = new byte[Math.Min(content.Length + 1, 1 << 20)];
            var offset = 0;
            int n;
            while ((n = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (n > content.Length - offset || !buffer.AsSpan(0, n).SequenceEqual(content.Span.Slice(offset, n)))
                {
                    return false;
                }
                offset += n;
            }
            return offset == content.Length;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
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
                        token => Client.AbortMultipartUploadAsync(_bucket, upload.Key, upload.UploadId, token), cancellationToken).ConfigureAwait(false);
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
            var response = await CallAsync("list uploads in", prefix, token => Client.ListMultipartUploadsAsync(request, token), cancellationToken)
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

    /// <summary>
    /// One request, its failures as storage faults. It must be answered within <see cref="_answerLimit"/>
    /// (connect_timeout_seconds), retries included, counted for one that sends data from the last piece of
    /// its <paramref name="body"/> the connection took (from the last, four times that: what the socket's
    /// buffers hold, up to a few MB, still has to cross the link): a server that takes connections (or data)
    /// but never answers fails this destination instead of hanging the run, and a slow link that keeps taking
    /// data is not cut off.
    /// </summary>
    private async Task<T> CallAsync<T>(string what, string key, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken,
        bool missingIsNotFound = false, RequestBody? body = null)
    {
        using var answered = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        answered.CancelAfter(_answerLimit);
        if (body is not null)
        {
            body.Taken = all => answered.CancelAfter(all ? 4 * _answerLimit : _answerLimit);
        }
        try
        {
            return await call(answered.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StorageException(
                $"S3 {what} {DescribeSafe(key)} failed: no answer within {_answerLimit.TotalSeconds:0} s (connect_timeout_seconds)", e, wholeDestination: true);
        }
        catch (AmazonS3Exception e) when (missingIsNotFound && e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new FileNotFoundException($"{Describe(key)} does not exist", Describe(key), e);
        }
        catch (AmazonServiceException e)
        {
            var code = string.IsNullOrEmpty(e.ErrorCode) ? $"HTTP {(int)e.StatusCode}" : e.ErrorCode;
            throw new StorageException($"S3 {what} {DescribeSafe(key)} failed: {Reason(e)} ({code})", e, wholeDestination: RefusesEveryKey(e));
        }
        catch (AmazonClientException e)
        {
            // No answer from the server (refused, timed out, name not resolved).
            throw new StorageException($"S3 {what} {DescribeSafe(key)} failed: {FirstLine(e.Message)}", e, wholeDestination: true);
        }
        catch (HttpRequestException e)
        {
            throw new StorageException($"S3 {what} {DescribeSafe(key)} failed: {FirstLine(e.Message)}", e, wholeDestination: true);
        }
        catch (Exception e) when (e is SocketException || (e is IOException && e is not (FileNotFoundException or StorageException)))
        {
            // The connection cut while connecting or mid-answer, which the SDK does not always wrap.
            throw new StorageException($"S3 {what} {DescribeSafe(key)} failed: {FirstLine(e.Message)}", e, wholeDestination: true);
        }
        finally
        {
            if (body is not null)
            {
                body.Taken = null;
            }
        }
    }

    /// <summary>A request's data; each read of it (the connection taking more) calls <see cref="Taken"/>: true once all is read.</summary>
    private sealed class RequestBody(byte[] buffer, int count) : MemoryStream(buffer, 0, count, writable: false)
    {
        public Action<bool>? Taken { get; set; }

        public override int Read(byte[] buffer, int offset, int count) => Took(base.Read(buffer, offset, count));

        public override int Read(Span<byte> buffer) => Took(base.Read(buffer));

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Took(await base.ReadAsync(buffer, offset, count, cancellationToken).ConfigureAwait(false));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Took(await base.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        private int Took(int read)
        {
            Taken?.Invoke(Position == Length);
            return read;
        }
    }

    /// <summary>
    /// What a refusal means. Servers often send no text (Ceph never does for these), and the
    /// common ones are the operator's to fix: named in the config's words.
    /// </summary>
    private static string Reason(AmazonServiceException e) => e.ErrorCode switch
    {
        "SignatureDoesNotMatch" => "the secret access key is wrong",
        "InvalidAccessKeyId" => "the access key id is not known to the server",
        "NoSuchBucket" => "no such bucket",
        "AccessDenied" => "access denied to these credentials",
        "RequestTimeTooSkewed" => "this host's clock differs too much from the server's",
        "AuthorizationHeaderMalformed" or "PermanentRedirect" => "the bucket is in another region than the configured one",
        _ when FirstLine(e.Message) is { Length: > 0 } text => text,
        _ => $"HTTP {(int)e.StatusCode} {e.StatusCode}",
    };

    /// <summary>
    /// A refusal of the bucket or the credentials, which every key shares. AccessDenied is not one:
    /// a bucket policy may grant some prefixes and not others.
    /// </summary>
    private static bool RefusesEveryKey(AmazonServiceException e) => e.ErrorCode is
        "NoSuchBucket" or "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "RequestTimeTooSkewed" or "AuthorizationHeaderMalformed" or "PermanentRedirect";

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
        private readonly List<int> _partSizes = [];
        private byte[] _buffer = new byte[64 * 1024];
        private int _length;
        private int _partSize;
        private long _sent;
        private string? _uploadId;
        private bool _done;

        /// <summary>The run's: a part sent from a synchronous write (a codec's Dispose) stops with it too.</summary>
        private readonly CancellationToken _cancellation;

        internal S3Write(S3Storage storage, string key, CancellationToken cancellation)
        {
            _storage = storage;
            _cancellation = cancellation;
            _key = key;
            _objectKey = storage.ObjectKey(key);
            _content = new PartStream(this);
            _partSize = storage.PartSize;
            PeakBufferSize = _buffer.Length;
        }

        public Stream Content => _content;

        /// <summary>Parts sent so far (0 while the write still fits in one buffer).</summary>
        public int PartsUploaded => _parts.Count;

        /// <summary>The size of each part sent, in order.</summary>
        public IReadOnlyList<int> PartSizes => _partSizes;

        /// <summary>The largest buffer this write has held: the memory it used.</summary>
        public int PeakBufferSize { get; private set; }

        /// <summary>The multipart upload's id, once started.</summary>
        public string? UploadId => _uploadId;

        public async Task CommitAsync(CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_done, this);
            // The conditional create below is what keeps an object from being replaced; this check
            // fails early, and is all there is on a server that ignores If-None-Match.
            if (await _storage.StatAsync(_key, cancellationToken).ConfigureAwait(false) is not null)
            {
                throw AlreadyExists();
            }
            try
            {
                if (_uploadId is null)
                {
                    using var body = new RequestBody(_buffer, _length);
                    var put = new PutObjectRequest
                    {
                        BucketName = _storage._bucket,
                        Key = _objectKey,
                        InputStream = body,
                        AutoCloseStream = false,
                        MD5Digest = Md5(_buffer.AsSpan(0, _length)),
                        UseChunkEncoding = false,
                        IfNoneMatch = "*",
                    };
                    await _storage.CallAsync("write", _key, token => _storage.Client.PutObjectAsync(put, token), cancellationToken, body: body)
                        .ConfigureAwait(false);
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
                        IfNoneMatch = "*",
                    };
                    await _storage.CallAsync("complete the upload of", _key,
                        token => _storage.Client.CompleteMultipartUploadAsync(complete, token), cancellationToken).ConfigureAwait(false);
                }
            }
            catch (StorageException e) when (e.InnerException is AmazonS3Exception { StatusCode: HttpStatusCode.PreconditionFailed })
            {
                // Created meanwhile by someone else: theirs stays, this upload is aborted on dispose. Unless the
                // object is this very write, a PutObject the SDK sent again after its answer was lost.
                if (_uploadId is not null || !await _storage.HoldsExactlyAsync(_key, _buffer.AsMemory(0, _length), cancellationToken).ConfigureAwait(false))
                {
                    throw AlreadyExists(e.InnerException);
                }
            }
            _done = true;
            _buffer = [];
        }

        private StorageException AlreadyExists(Exception? inner = null) =>
            new($"{_storage.Describe(_key)} already exists; not overwritten", inner);

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
                    SendPartAsync(_cancellation).GetAwaiter().GetResult();
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
            if (_length >= _partSize)
            {
                return true;
            }
            Array.Resize(ref _buffer, (int)Math.Min(_partSize, 2L * _buffer.Length));
            PeakBufferSize = Math.Max(PeakBufferSize, _buffer.Length);
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
                    token => _storage.Client.InitiateMultipartUploadAsync(initiate, token), cancellationToken).ConfigureAwait(false);
                _uploadId = started.UploadId;
            }
            var number = _parts.Count + 1;
            if (number > _storage.PartLimit)
            {
                throw new StorageException(
                    $"S3 upload of {_storage.Describe(_key)} failed: more than {_storage.PartLimit} parts ({_sent} bytes sent), too large for one object");
            }
            using var body = new RequestBody(_buffer, _length);
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
            var response = await _storage.CallAsync($"upload part {number} of", _key, token => _storage.Client.UploadPartAsync(part, token), cancellationToken, body: body)
                .ConfigureAwait(false);
            _parts.Add(new PartETag { PartNumber = number, ETag = response.ETag });
            _partSizes.Add(_length);
            _sent += _length;
            _length = 0;
            _partSize = NextPartSize(_partSize, _sent, _storage.PartLimit);
        }

        internal static string Md5(ReadOnlySpan<byte> data) =>
#pragma warning disable CA5351 // MD5 is what Content-MD5 is: an integrity check of the part in transit, not security.
            Convert.ToBase64String(System.Security.Cryptography.MD5.HashData(data));
#pragma warning restore CA5351

        /// <summary>The write side the backup chain sees: write-only, not seekable.</summary>
        private sealed class PartStream(S3Write owner) : Pipeline.WriteOnlyStream
        {
            public override void Flush()
            {
            }

            public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

            public override void Write(ReadOnlySpan<byte> buffer) => owner.Write(buffer);

            public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
                owner.WriteAsync(buffer, cancellationToken);
        }
    }
}
