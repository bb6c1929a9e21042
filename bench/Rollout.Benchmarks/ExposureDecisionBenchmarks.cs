using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.FeatureManagement;
using Microsoft.FeatureManagement.FeatureFilters;
using Rollout.Core.Exposure;

namespace Rollout.Benchmarks;

/// <summary>
/// One sticky 25% exposure decision for one subject: ours (<see cref="ExposureBucketer.IsExposed"/>) against
/// Microsoft.FeatureManagement's built-in <c>Microsoft.Targeting</c> filter (DefaultRolloutPercentage = 25),
/// configured through in-memory <see cref="IConfiguration"/>. Each invocation makes exactly one decision, for the
/// next of <see cref="SubjectCount"/> pre-built subjects, so neither side gets to decide for a single cached input.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(TrendRatioConfig))]
public class ExposureDecisionBenchmarks : IDisposable
{
    private const string Feature = "orders-v2";
    private const int RolloutPercent = 25;

    // A power of two, so that the cycling index wraps with a mask rather than a division.
    private const int SubjectCount = 1024;
    private const int IndexMask = SubjectCount - 1;

    // The exposed share over the 1024 subjects must be within this many points of 25%; for a fair hash the
    // standard deviation of that share is about 1.35 points, so 5 points only trips on a real misconfiguration.
    private const double ShareTolerancePoints = 5.0;

    private readonly string[] _subjectIds = new string[SubjectCount];
    private readonly TargetingContext[] _targetingContexts = new TargetingContext[SubjectCount];

    private ServiceProvider? _services;
    private IFeatureManager? _featureManager;
    private ExposureBucketer? _bucketer;
    private ExposureLevel _exposure;
    private int _index;

    [GlobalSetup]
    public void Setup()
    {
        // Realistic, deterministic subject ids (GUID-shaped, 36 chars), built once.
        var random = new Random(20_240_601);
        Span<byte> guidBytes = stackalloc byte[16];
        for (var i = 0; i < SubjectCount; i++)
        {
            random.NextBytes(guidBytes);
            _subjectIds[i] = new Guid(guidBytes).ToString("D");
            // FeatureManagement's input is a targeting context; it is built once per subject, like our string.
            _targetingContexts[i] = new TargetingContext { UserId = _subjectIds[i] };
        }

        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["feature_management:feature_flags:0:id"] = Feature,
                ["feature_management:feature_flags:0:enabled"] = "true",
                ["feature_management:feature_flags:0:conditions:client_filters:0:name"] = "Microsoft.Targeting",
                ["feature_management:feature_flags:0:conditions:client_filters:0:parameters:Audience:DefaultRolloutPercentage"] =
                    RolloutPercent.ToString(CultureInfo.InvariantCulture),
            })
            .Build();

        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddFeatureManagement(configuration);
        _services = services.BuildServiceProvider();
        _featureManager = _services.GetRequiredService<IFeatureManager>();

        _bucketer = new ExposureBucketer(Feature);
        _exposure = ExposureLevel.FromPercent(RolloutPercent);

        AssertBothSidesDecide();
        _index = 0;
    }

    [GlobalCleanup]
    public void Cleanup() => Dispose();

    [Benchmark(Baseline = true)]
    public Task<bool> FeatureManagement_IsEnabledAsync()
    {
        var i = _index = (_index + 1) & IndexMask;
        return _featureManager!.IsEnabledAsync(Feature, _targetingContexts[i]);
    }

    [Benchmark]
    public bool Rollout_IsExposed()
    {
        var i = _index = (_index + 1) & IndexMask;
        return _bucketer!.IsExposed(_subjectIds[i], _exposure);
    }

    public void Dispose()
    {
        _services?.Dispose();
        _services = null;
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Guards against a meaningless number: a missing feature, an unknown filter or a wrong schema makes
    /// FeatureManagement answer a constant, which is much cheaper than a real targeting evaluation.
    /// </summary>
    private void AssertBothSidesDecide()
    {
        var featureManagementExposed = 0;
        var rolloutExposed = 0;
        for (var i = 0; i < SubjectCount; i++)
        {
            // Setup runs outside the measured region, once; blocking on the (synchronously completed) task is fine here.
            if (_featureManager!.IsEnabledAsync(Feature, _targetingContexts[i]).GetAwaiter().GetResult())
            {
                featureManagementExposed++;
            }

            if (_bucketer!.IsExposed(_subjectIds[i], _exposure))
            {
                rolloutExposed++;
            }
        }

        CheckShare("Microsoft.FeatureManagement (Microsoft.Targeting)", featureManagementExposed);
        CheckShare("Rollout ExposureBucketer", rolloutExposed);
        Console.WriteLine(
            $"// Exposed at {RolloutPercent}% over {SubjectCount} subjects: " +
            $"FeatureManagement {featureManagementExposed}, Rollout {rolloutExposed}.");
    }

    private static void CheckShare(string side, int exposed)
    {
        var sharePercent = 100.0 * exposed / SubjectCount;
        if (exposed == 0 || exposed == SubjectCount || Math.Abs(sharePercent - RolloutPercent) > ShareTolerancePoints)
        {
            throw new InvalidOperationException(
                $"{side} exposed {exposed} of {SubjectCount} subjects ({sharePercent:0.0}%), expected about {RolloutPercent}%: " +
                "the benchmark is misconfigured and would measure nothing meaningful.");
        }
    }

    /// <summary>Shows the ratio as "N.NNx faster" instead of a two-decimal fraction that rounds 0.016 to 0.02.</summary>
    private sealed class TrendRatioConfig : ManualConfig
    {
        public TrendRatioConfig() => SummaryStyle = SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend);
    }
}
