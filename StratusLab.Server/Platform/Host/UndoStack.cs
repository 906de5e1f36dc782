namespace StratusLab.Server.Platform.Host;

/// <summary>
/// Multi-step provisioning: add an undo after each step that changed something, call <see cref="Commit"/>
/// when all steps succeeded; disposing an uncommitted stack undoes the steps in reverse order.
/// </summary>
public sealed class UndoStack(ILogger logger) : IAsyncDisposable
{
    readonly Stack<(string Name, Func<Task> Undo)> _steps = new();
    bool _committed;

    public void Add(string name, Func<Task> undo) => _steps.Push((name, undo));

    public void Commit() => _committed = true;

    /// <summary>Runs every undo now (newest first); failures are logged, never thrown, so the rest still run.</summary>
    public async Task RollbackAsync()
    {
        while (_steps.TryPop(out var step))
        {
            try { await step.Undo(); }
            catch (Exception e) { logger.LogError(e, "Undo of '{Step}' failed; something may be left behind", step.Name); }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_committed) await RollbackAsync();
    }
}
