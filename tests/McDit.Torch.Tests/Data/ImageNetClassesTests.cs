using McDit.Torch.Data;
using Xunit;

namespace McDit.Torch.Tests.Data;

public class ImageNetClassesTests
{
    [Fact]
    public void ThousandDistinctNamesInLabelOrder()
    {
        var names = ImageNetClasses.Names;
        Assert.Equal(1000, names.Count);
        Assert.Equal(1000, names.Select(n => n.ToLowerInvariant()).Distinct().Count());
        Assert.Equal("tench", names[0]);
        Assert.Equal("great white shark", names[2]);
        Assert.Equal("golden retriever", names[207]);
        Assert.Equal("tabby", names[281]);
        Assert.Equal("otter", names[360]);
        Assert.Equal("aircraft carrier", names[403]);
        Assert.Equal("pizza", names[963]);
        Assert.Equal("volcano", names[980]);
        Assert.Equal("toilet tissue", names[999]);
    }

    [Fact]
    public void FindTakesIndicesAndNamesLoosely()
    {
        var names = ImageNetClasses.Names;
        Assert.Equal(207, ImageNetClasses.Find("Golden_Retriever", names));
        Assert.Equal(360, ImageNetClasses.Find(" otter ", names));
        Assert.Equal(12, ImageNetClasses.Find("12", names));
        Assert.Null(ImageNetClasses.Find("1000", names));
        Assert.Null(ImageNetClasses.Find("unicorn", names));
        Assert.Contains("golden retriever", ImageNetClasses.Suggest("retriever", names));
    }
}
