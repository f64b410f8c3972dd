using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace McDit.Serve.Internal;

/// <summary>JSON error answers the page shows as they are: <c>{"error": "...", "field": "..."}</c>.</summary>
internal static class ApiError
{
    public static IResult BadRequest(string message, string? field = null) => Json(StatusCodes.Status400BadRequest, message, field);
    public static IResult NotFound(string message) => Json(StatusCodes.Status404NotFound, message);
    public static IResult Conflict(string message) => Json(StatusCodes.Status409Conflict, message);
    public static IResult TooMany(string message) => Json(StatusCodes.Status429TooManyRequests, message);
    public static IResult Unsupported(string message) => Json(StatusCodes.Status415UnsupportedMediaType, message);
    public static IResult TooLarge(string message) => Json(StatusCodes.Status413PayloadTooLarge, message);

    public static IResult Json(int status, string message, string? field = null) =>
        Results.Json(new ErrorBody(message, field), ServeJson.Options, statusCode: status);

    /// <summary>The body of an error answer.</summary>
    internal sealed record ErrorBody(string Error, string? Field);
}

/// <summary>The JSON settings of every answer (camelCase, enums as names).</summary>
internal static class ServeJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
