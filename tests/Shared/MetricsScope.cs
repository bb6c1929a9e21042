using System.Diagnostics.Metrics;

namespace Rollout.Tests.Shared;

/// <summary>
/// A meter factory whose meters only this test reads (tests running in parallel create Rollout meters of the same
/// name), and the reading of the <c>rollout.dualwrite.dead_letters.open</c> gauge of any meter scope.
/// </summary>
internal sealed class MetricsScope : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var meter = new Meter(options.Name, options.Version, options.Tags, this);
        lock (_meters)
        {
            _meters.Add(meter);
        }

        return meter;
    }

    public IReadOnlyList<(string Feature, long Open)> OpenDeadLetters() => OpenDeadLetters(this);

    /// <summary>What the gauge reports when it is collected now, for the meters created by <paramref name="scope"/>.</summary>
    public static IReadOnlyList<(string Feature, long Open)> OpenDeadLetters(object scope)
    {
        var seen = new List<(string, long)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, scope) && instrument.Name == "rollout.dualwrite.dead_letters.open")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "rollout.feature")
                {
                    seen.Add(((string)tag.Value!, value));
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return seen;
    }

    public void Dispose()
    {
        lock (_meters)
        {
            _meters.ForEach(m => m.Dispose());
        }
    }
}
