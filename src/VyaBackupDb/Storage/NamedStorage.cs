namespace VyaBackupDb.Storage;

/// <summary>A storage destination and the name that `list` shows for it (e.g. "local").</summary>
public sealed record NamedStorage(string Name, IStorage Storage);
